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


def _rooted(frame: str) -> str:
    """py-spy names files relative to their sys.path entry (``chat/outbox.py``): a leading
    slash lets ``/chat/`` match the project's files and the site-packages' alike."""
    return frame.replace(" (", " (/", 1)


def _layer(frame: str) -> str | None:
    rooted = _rooted(frame)
    for fragment, layer in LAYERS:
        if fragment in rooted:
            return layer
    return None


def _is_app(frame: str) -> bool:
    rooted = _rooted(frame)
    return any(fragment in rooted for fragment in APP_FRAGMENTS)


# Frames of the product's own code (what a profile is read against: which service call).
APP_FRAGMENTS = ("/chat/", "/accounts/", "/presence/", "/notifications/", "/chatproject/")
# Frames that hand work to a worker thread: what follows is one service call's database work.
THREAD_HOP_FRAGMENTS = ("asgiref/sync.py", "concurrent/futures/thread.py")


def _without_line(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rpartition(':')[0]})" if where else frame


def entry_point(frames: list[str]) -> str:
    """What a stack was doing, in the product's terms: in a worker thread, the first app
    frame after the hop (the service call: a send batch, an ack flush, a presence tick);
    on the event loop, the deepest app frame (the part of a connection that runs), or the
    layer when no app frame is on the stack (the server's own protocol work)."""
    hop = max(
        (i for i, frame in enumerate(frames) if any(f in frame for f in THREAD_HOP_FRAGMENTS)),
        default=-1,
    )
    if hop >= 0:
        for frame in frames[hop + 1 :]:
            if _is_app(frame) and "db_threads.py" not in frame:
                return "thread: " + _without_line(frame)
        return "thread: (idle or outside the app)"
    for frame in reversed(frames):
        if _is_app(frame):
            return "loop: " + _without_line(frame)
    return "loop: " + (_layer(frames[-1]) or "other")


def summarise(folder: Path, *, top: int = 15) -> str:
    """Markdown: busy share, layers (inclusive) and top self-time functions."""
    self_time: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    entries: Counter[str] = Counter()
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
            entries[entry_point(frames)] += count
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
    lines += ["", "| where (service call in a thread, or loop work) | share of busy samples |"]
    lines += ["| --- | --- |"]
    lines += [
        f"| `{name}` | {100 * n / max(busy, 1):.1f}% |" for name, n in entries.most_common(top)
    ]
    lines += ["", "| function (self time) | share of busy samples |", "| --- | --- |"]
    lines += [
        f"| `{name}` | {100 * n / max(busy, 1):.1f}% |" for name, n in self_time.most_common(top)
    ]
    return "\n".join(lines)
