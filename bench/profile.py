"""Sample the server with py-spy during a step, and summarise where its CPU went.

``py-spy record --format raw`` writes one line per distinct stack with its sample count.
The summary gives the functions with the most self time and the share of samples that
passed through each layer (database driver, Django ORM, Redis, WebSocket server, JSON,
our own code), which is what tells a reader what bounds a figure.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

# First matching fragment of a frame's file path names the layer.
LAYERS = (
    ("psycopg", "PostgreSQL driver (psycopg)"),
    ("sqlite3", "SQLite"),
    ("django/db", "Django ORM / db layer"),
    ("asgiref", "asgiref sync_to_async threads"),
    ("channels", "Channels"),
    ("redis", "Redis client"),
    ("uvicorn", "uvicorn"),
    ("daphne", "daphne/twisted"),
    ("twisted", "daphne/twisted"),
    ("granian", "granian"),
    ("websockets", "websockets protocol"),
    ("wsproto", "websockets protocol"),
    ("pydantic", "pydantic (frame validation)"),
    ("orjson", "JSON"),
    ("json", "JSON"),
    ("/chat/", "chat app code"),
    ("/accounts/", "accounts app code"),
    ("asyncio", "asyncio event loop"),
    ("concurrent/futures", "thread pool"),
    ("threading", "thread pool"),
)


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


def start(pids: list[int], *, seconds: float | None, folder: Path) -> list[subprocess.Popen[bytes]]:
    """One py-spy per server process (sampling without pausing it), for ``seconds`` or,
    with None, until ``finish(..., stop=True)``."""
    binary = py_spy()
    if binary is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    duration = [] if seconds is None else ["--duration", str(max(1, int(seconds)))]
    return [
        subprocess.Popen(  # noqa: S603 (fixed arguments)
            [
                binary,
                "record",
                "--nonblocking",
                "--subprocesses",
                "--format",
                "raw",
                *duration,
                "--pid",
                str(pid),
                "--output",
                str(folder / f"profile-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def finish(processes: list[subprocess.Popen[bytes]], *, stop: bool = False) -> None:
    """Wait for the profilers; ``stop`` ends open-ended ones (py-spy writes its output on
    SIGINT)."""
    for process in processes:
        if stop:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def _layer(frame: str) -> str | None:
    for fragment, layer in LAYERS:
        if fragment in frame:
            return layer
    return None


def summarise(folder: Path, *, top: int = 15) -> str:
    """Markdown: busy share, layers (inclusive) and top self-time functions."""
    self_time: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for path in sorted(folder.glob("profile-*.txt")):
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            total += count
            self_time[frames[-1]] += count
            for layer in {_layer(frame) for frame in frames} - {None}:
                layers[str(layer)] += count
    if total == 0:
        return "_no profile samples (is py-spy installed and allowed to ptrace?)_"
    # py-spy records only threads that are running (not waiting on a lock or the network).
    busy = total
    lines = [
        f"{total:,} samples of running threads (100 per second per running thread).",
        "",
        "| layer (inclusive) | share of busy samples |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {100 * n / max(busy, 1):.0f}% |" for name, n in layers.most_common()]
    lines += ["", "| function (self time) | share of busy samples |", "| --- | --- |"]
    lines += [
        f"| `{name}` | {100 * n / max(busy, 1):.1f}% |" for name, n in self_time.most_common(top)
    ]
    return "\n".join(lines)
