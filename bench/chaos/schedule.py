"""A seeded fault schedule, and the runner that applies it to a cluster.

``Schedule(seed, faults, duration, gap)`` orders the faults (each name once per time it is
listed; default every fault once) and picks each one's target server from the seed alone:
the same seed gives the same schedule. Faults never overlap: after ``gap`` seconds of
quiet the first starts, each lasts its window (``duration``, or longer where the fault
needs it: a paused server must outlast the presence timeout), and ``gap`` seconds of quiet
follow each, the last one included, so the system can settle before the checker runs.

``run(cluster, schedule, workload)`` applies it in real time and returns the ``Timeline``
of what happened when (fault start and stop, processes restarted), for the report. With a
workload, a per-server fault is aimed at the server holding the most devices when it
starts (the seeded target where servers tie): devices that fled one fault stay where they
went, so a fixed target could hit a server nobody is on.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bench.chaos.cluster import Cluster
from bench.chaos.faults import FAULTS, Fault, Workload


@dataclass(frozen=True)
class Entry:
    start: float  # seconds after the run started
    fault: str
    target: int  # chat server index (the seeded choice; see ``aimed_target``)
    window: float  # seconds from the fault's start to its stop

    @property
    def end(self) -> float:
        return self.start + self.window


class Schedule:
    def __init__(
        self,
        seed: int,
        faults: Iterable[str] | None = None,
        duration: float = 10.0,
        gap: float = 10.0,
        *,
        servers: int = 2,
        min_windows: Mapping[str, float] | None = None,
    ) -> None:
        names = list(FAULTS if faults is None else faults)
        unknown = sorted(set(names) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {sorted(FAULTS)}")
        self.seed, self.duration, self.gap, self.servers = seed, duration, gap, servers
        rng = random.Random(seed)
        rng.shuffle(names)
        self.entries: list[Entry] = []
        offset = gap
        for name in names:
            window = max(duration, (min_windows or {}).get(name, 0.0))
            self.entries.append(Entry(offset, name, rng.randrange(servers), window))
            offset += window + gap
        self.total = offset  # the run's length, trailing quiet included

    @classmethod
    def for_cluster(
        cls,
        cluster: Cluster,
        seed: int,
        faults: Iterable[str] | None = None,
        duration: float = 10.0,
        gap: float = 10.0,
    ) -> Schedule:
        """The schedule with the cluster's server count and its faults' minimum windows."""
        return cls(
            seed,
            faults,
            duration,
            gap,
            servers=len(cluster.servers),
            min_windows={name: fault.min_window(cluster) for name, fault in FAULTS.items()},
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and self.entries == other.entries

    def __hash__(self) -> int:
        return hash(tuple(self.entries))

    def __repr__(self) -> str:
        return f"Schedule(seed={self.seed}, entries={self.entries})"


@dataclass(frozen=True)
class Event:
    at: float  # seconds after the run started (monotonic)
    wall: float  # time.time() of the same instant, to line up with clients' records
    kind: str  # "fault_start", "fault_stop", "fault_healed", "process"
    fault: str | None = None
    target: int | None = None
    detail: str = ""


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(
        self, kind: str, fault: str | None = None, target: int | None = None, detail: str = ""
    ) -> Event:
        event = Event(time.monotonic() - self.started, time.time(), kind, fault, target, detail)
        with self._lock:
            self.events.append(event)
        return event

    def note_process(self, detail: str) -> None:
        self.add("process", detail=detail)

    def windows(self) -> list[tuple[str, int, float, float]]:
        """(fault, target, start, stop) per fault that ran, seconds after the start."""
        starts: dict[tuple[str, int], float] = {}
        windows = []
        for event in self.events:
            if event.fault is None or event.target is None:
                continue
            key = (event.fault, event.target)
            if event.kind == "fault_start":
                starts[key] = event.at
            elif event.kind == "fault_stop" and key in starts:
                windows.append((event.fault, event.target, starts.pop(key), event.at))
        return windows


def run(
    cluster: Cluster,
    schedule: Schedule,
    workload: Workload | None = None,
    *,
    cancel: threading.Event | None = None,
) -> Timeline:
    """Apply ``schedule`` in real time (blocking; run it beside the workload, e.g. in a
    thread); ``cancel`` ends it early, still stopping a fault that is under way."""
    for entry in schedule.entries:
        needed = FAULTS[entry.fault].min_window(cluster)
        if entry.window < needed:
            raise ValueError(f"{entry}: {entry.fault} needs a window of at least {needed}s")
    cancel = cancel or threading.Event()
    timeline = Timeline()
    cluster.listeners.append(timeline.note_process)
    try:
        for entry in schedule.entries:
            if _wait_until(timeline, entry.start, cancel):
                break
            fault_class = FAULTS[entry.fault]
            target = aimed_target(fault_class, entry.target, workload)
            _apply(cluster, entry, fault_class(target, workload), timeline, cancel)
        _wait_until(timeline, schedule.total, cancel)
    finally:
        cluster.listeners.remove(timeline.note_process)
    return timeline


def aimed_target(fault_class: type[Fault], seeded: int, workload: Workload | None) -> int:
    """The server a fault acts on: for a per-server fault, the one with the most devices
    connected now (ties keep the seeded one); otherwise the seeded index, unused."""
    if not fault_class.per_server or workload is None:
        return seeded
    counts = workload.devices_per_server()
    if not counts or counts[seeded] == max(counts):
        return seeded
    return counts.index(max(counts))


def _apply(
    cluster: Cluster, entry: Entry, fault: Fault, timeline: Timeline, cancel: threading.Event
) -> None:
    timeline.add("fault_start", entry.fault, fault.target)
    fault.start(cluster)
    try:
        _wait_until(timeline, entry.end, cancel)
    finally:
        timeline.add("fault_stop", entry.fault, fault.target)
        fault.stop(cluster)
        timeline.add("fault_healed", entry.fault, fault.target)


def _wait_until(timeline: Timeline, offset: float, cancel: threading.Event) -> bool:
    """Wait until ``offset`` seconds after the run's start; True if cancelled first."""
    return cancel.wait(max(0.0, timeline.started + offset - time.monotonic()))
