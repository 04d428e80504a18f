"""``python -m bench chaos``: the fault-injection run, from an isolated cluster to a report.

One run: start the production configuration on its own ports (bench.chaos.cluster), bring
every device of the workload live (bench.chaos.workload), apply the seeded schedule of
faults while the devices send (bench.chaos.schedule, in a thread: it blocks), let the
system settle, then check the ledger against the devices' streams, the stored history and
presence (bench.chaos.checker) and write the report with its timeline plot
(bench.chaos.report). The exit status is 1 when the checker found anything lost,
duplicated, reordered or a gap.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, fields
from pathlib import Path

from .checker import CheckResult, FaultWindow, check, check_presence
from .cluster import Cluster
from .faults import FAULTS
from .report import figures_table, write
from .schedule import Schedule, Timeline, run
from .workload import Workload, history_from_database

# Short presence settings, so that a paused server outlasts the presence timeout within a
# run of minutes (the product's defaults are 60 s / 10 s / 25 s).
PRESENCE_TIMEOUT = 6.0
PRESENCE_TICK = 1.0
HEARTBEAT_INTERVAL = 2


@dataclass(frozen=True)
class ChaosOptions:
    seed: int = 1
    faults: tuple[str, ...] = tuple(FAULTS)
    fault_seconds: float = 10.0
    gap_seconds: float = 10.0
    servers: int = 2
    users: int = 8
    devices_per_user: int = 2
    groups: int = 2
    group_size: int = 4
    rate: float = 20.0
    push_users: int = 2
    settle_seconds: float = 60.0
    push_settle_seconds: float = 30.0


# The options that go to the workload as they are (the others shape the schedule).
WORKLOAD_OPTIONS = (
    "users",
    "devices_per_user",
    "groups",
    "group_size",
    "rate",
    "push_users",
    "seed",
)
HELP = {
    "faults": f"comma-separated, ordered by the seed: {', '.join(FAULTS)}",
    "rate": "new messages per second, in total",
    "push_users": "users whose devices never connect and get Web Push instead",
    "settle_seconds": "how long to wait after the faults for every delivery",
    "push_settle_seconds": "then how long to wait for every owed push",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--option`` per ChaosOptions field, with its default."""
    for option in fields(ChaosOptions):
        default = getattr(ChaosOptions(), option.name)
        parser.add_argument(
            "--" + option.name.replace("_", "-"),
            type=str if isinstance(default, tuple) else type(default),
            default=",".join(default) if isinstance(default, tuple) else default,
            help=HELP.get(option.name),
        )


def options_from(args: argparse.Namespace) -> ChaosOptions:
    values = {option.name: getattr(args, option.name) for option in fields(ChaosOptions)}
    values["faults"] = tuple(name.strip() for name in args.faults.split(",") if name.strip())
    return ChaosOptions(**values)


class _FromRunnerThread:
    """The workload as the schedule's thread sees it: ``reconnect_all`` is handed to the
    workload's event loop (the workload is not thread-safe) and returns at once."""

    def __init__(self, workload: Workload, loop: asyncio.AbstractEventLoop) -> None:
        self._workload = workload
        self._loop = loop

    def reconnect_all(self) -> None:
        self._loop.call_soon_threadsafe(self._workload.reconnect_all)

    def devices_per_server(self) -> list[int]:
        async def count() -> list[int]:
            return self._workload.devices_per_server()

        return asyncio.run_coroutine_threadsafe(count(), self._loop).result(timeout=10)


def fault_windows(timeline: Timeline) -> list[FaultWindow]:
    """The schedule's windows on the ledger's clock (``time.monotonic()``)."""
    return [
        FaultWindow(
            f"{fault} (server {target})" if FAULTS[fault].per_server else fault,
            timeline.started + start,
            timeline.started + stop,
        )
        for fault, target, start, stop in timeline.windows()
    ]


async def _drive(
    cluster: Cluster, schedule: Schedule, options: ChaosOptions
) -> tuple[Workload, Timeline, CheckResult]:
    workload = Workload(
        cluster.http_urls,
        cluster.ws_urls,
        push_service=cluster.push_receiver,
        **{name: getattr(options, name) for name in WORKLOAD_OPTIONS},
    )
    await workload.start()
    proxy = _FromRunnerThread(workload, asyncio.get_running_loop())
    try:
        timeline = await asyncio.to_thread(run, cluster, schedule, proxy)
        await asyncio.to_thread(cluster.wait_healthy)
        await workload.settle(options.settle_seconds)
        await workload.wait_for(workload.pushes_arrived, options.push_settle_seconds)
        conversation_ids = sorted(workload.ledger.members)
        history = await asyncio.to_thread(
            history_from_database, cluster.database_url, conversation_ids
        )
        await workload.take_offline(1)
        presence = await check_presence(workload.read_presence, workload.presence_truth())
    finally:
        await workload.stop()
    windows = fault_windows(timeline)
    result = check(
        workload.ledger,
        windows=windows,
        history=history,
        pushes=workload.pushes(),
        presence=presence,
    )
    return workload, timeline, result


def run_chaos(options: ChaosOptions, *, out: Path, command: str) -> int:
    with Cluster(
        servers=options.servers,
        presence_timeout=PRESENCE_TIMEOUT,
        presence_tick=PRESENCE_TICK,
        heartbeat_interval=HEARTBEAT_INTERVAL,
    ) as cluster:
        schedule = Schedule.for_cluster(
            cluster,
            options.seed,
            options.faults,
            duration=options.fault_seconds,
            gap=options.gap_seconds,
        )
        workload, timeline, result = asyncio.run(_drive(cluster, schedule, options))
    folder = out / (time.strftime("%Y%m%d-%H%M%S") + "-chaos")
    windows = fault_windows(timeline)
    events = [
        (timeline.started + event.at, f"{event.kind} {event.fault or ''}".strip())
        for event in timeline.events
    ]
    write(folder, workload.ledger, result, timeline=events, windows=windows, command=command)
    print(figures_table(result), flush=True)
    print(f"totals: {result.totals()}", flush=True)
    print(f"report: {folder / 'report.md'}", flush=True)
    return 0 if result.ok else 1
