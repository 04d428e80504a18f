"""What every workload shares: its result, its population, the ledger summary.

Each workload (``bench.sweeps``, ``bench.connections``, ``bench.history``,
``bench.presence``) runs against one started target and returns a ``Result``: rows (one
per rate step or measurement) and a summary of headline figures. Every workload that moves
messages ends with the merged loss/duplicate ledger of all load generator processes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import profile, setup_api
from .ledger import Ledger
from .loadgen import LoadGenerator
from .options import Options
from .population import Population
from .targets import Target

# Per-connection frame limit of the chat server is 30/s (burst 60); staying under it keeps
# the flood control out of the measurement.
MAX_FRAMES_PER_CONNECTION = 25.0
ONE_TO_ONE_P99_MS = 100.0


@dataclass
class Result:
    workload: str
    target: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # step label -> Markdown summary of a py-spy profile of the server
    profiles: dict[str, str] = field(default_factory=dict)
    # A calibration target's (the relay's, the Channels tutorial's): a reference for the rest.
    calibration: bool = False


def result_for(target: Target, workload: str) -> Result:
    return Result(workload=workload, target=target.name, calibration=target.calibration)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_population(
    target: Target, *, users: int, group_size: int, senders: int | None = None
) -> Population:
    if target.calibration:
        return setup_api.calibration_population(
            target.ws_urls, users=users, group_size=group_size, senders_per_conversation=senders
        )
    log(f"  creating {users:,} users through the REST API ...")
    return setup_api.chat_population(
        target.base_urls,
        target.ws_urls,
        users=users,
        group_size=group_size,
        senders_per_conversation=senders,
    )


def ledger_summary(ledger: Ledger) -> dict[str, int]:
    return {
        "acknowledged": len(ledger.acked),
        "lost": ledger.lost(),
        "duplicates": ledger.duplicates,
        "gaps": ledger.gaps,
        "unexpected": ledger.unexpected(),
    }


def connect_all(gen: LoadGenerator, options: Options, result: Result) -> None:
    connected = gen.connect(concurrency=options.connect_concurrency, sync=True)
    if connected["failures"]:
        result.notes.append(f"connect failures: {connected['failures']}")
        log(f"  connect failures: {connected['failures']}")


@contextmanager
def profiling(target: Target, options: Options, result: Result, label: str) -> Iterator[None]:
    """With ``--profile``, py-spy the chat server for the duration of the block and add
    the summary to the result."""
    if not (options.profile and target.kind == "chat"):
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    processes = profile.start(target.pids, seconds=None, folder=folder)
    try:
        yield
    finally:
        profile.finish(processes, stop=True)
        result.profiles[label] = profile.summarise(folder)
        shutil.rmtree(folder, ignore_errors=True)
