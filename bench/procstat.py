"""CPU time and memory of processes, read from /proc (Linux), with no dependency.

The benchmark reports the CPU of the server and of every load generator process, so a
reader can tell which one was the bottleneck, and the RSS of the server's whole process
tree (granian runs the app in a child process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may contain spaces; fields after it are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    try:
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(statm[1]) * _PAGE_SIZE


def descendants(pid: int) -> list[int]:
    """``pid`` and all its children, grandchildren, ..."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            found.extend(int(child) for child in children)
    return found


def tree_rss_bytes(pids: list[int]) -> int:
    return sum(rss_bytes(child) for pid in pids for child in descendants(pid))


def tree_cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_seconds(child) for pid in pids for child in descendants(pid))


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


@dataclass
class CpuMeter:
    """CPU used by some process trees and by the machine between ``start`` and ``stop``.

    Percentages are of one core (100 = one core fully busy), as ``top`` shows them.
    """

    pids: list[int]
    _start_cpu: float = 0.0
    _start_busy: float = 0.0
    _start_total: float = 0.0
    _start_wall: float = 0.0

    def start(self, now: float) -> None:
        self._start_cpu = tree_cpu_seconds(self.pids)
        self._start_busy, self._start_total = machine_busy_seconds()
        self._start_wall = now

    def stop(self, now: float) -> tuple[float, float]:
        """(CPU % of these processes, machine busy % of all cores)."""
        wall = max(now - self._start_wall, 1e-9)
        used = tree_cpu_seconds(self.pids) - self._start_cpu
        busy, total = machine_busy_seconds()
        machine = 100.0 * (busy - self._start_busy) / max(total - self._start_total, 1e-9)
        return 100.0 * used / wall, machine
