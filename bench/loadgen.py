"""The load generator's coordinator: starts worker processes and drives them in lockstep.

Devices are dealt round-robin to ``processes`` workers (``bench.loadgen_worker``), so every
conversation spans processes and deliveries cross them as they would across real phones.
Each worker's CPU is measured around every step: a worker near 100% of a core means the
generator, not the server, may be the limit, and the report says so.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import time
from array import array
from multiprocessing.connection import Connection, wait
from typing import Any

from .ledger import Ledger
from .loadgen_worker import ACK_INTERVAL_SECONDS, Faults, StepPlan, WorkerSetup, worker_main
from .population import Population
from .procstat import tree_cpu_seconds

# A rate step may start only after every worker got its plan.
START_DELAY_SECONDS = 0.5


class LoadGenerator:
    def __init__(
        self,
        population: Population,
        *,
        processes: int,
        faults: Faults | None = None,
        ack_seconds: float = ACK_INTERVAL_SECONDS,
    ) -> None:
        self.population = population
        context = multiprocessing.get_context("spawn")
        recipients = {cid: population.recipients(cid) for cid in population.conversations}
        recipients[0] = 0
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        self.sender_counts: list[int] = []
        self.device_counts: list[int] = []
        for index in range(processes):
            devices = population.devices[index::processes]
            parent, child = context.Pipe()
            process = context.Process(
                target=worker_main,
                args=(child, WorkerSetup(devices, recipients, faults or Faults(), ack_seconds)),
                daemon=True,
            )
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)
            self.sender_counts.append(sum(1 for d in devices if d.conversation_id))
            self.device_counts.append(len(devices))
        # Duplicates counted up to the last step, so each step can report its own.
        self.ledger_duplicates = 0
        self._cpu_start: list[float] = []
        self._wall_start = 0.0

    @property
    def pids(self) -> list[int]:
        return [int(process.pid) for process in self.processes]

    # --- plumbing -------------------------------------------------------------------------
    def _call(self, name: str, arguments: list[Any], *, show: str = "") -> list[Any]:
        """Send one command to every worker; collect replies, printing progress meanwhile."""
        for pipe, argument in zip(self.pipes, arguments, strict=True):
            pipe.send((name, argument))
        replies: dict[int, Any] = {}
        progress: dict[int, dict[str, int]] = {}
        last_print = 0.0
        while len(replies) < len(self.pipes):
            for ready in wait(self.pipes, timeout=1.0):
                index = self.pipes.index(ready)  # type: ignore[arg-type]
                kind, payload = self.pipes[index].recv()
                if kind == "progress":
                    progress[index] = payload
                else:
                    replies[index] = payload
            if show and progress and time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                totals = {
                    key: sum(p[key] for p in progress.values())
                    for key in ("sent", "acks", "delivered", "pongs", "errors")
                }
                print(
                    f"\r  {show}: sent {totals['sent']:,}  acked {totals['acks']:,}  "
                    f"delivered {totals['delivered']:,}  pongs {totals['pongs']:,}  "
                    f"errors {totals['errors']:,}   ",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
        if show:
            print("", file=sys.stderr)
        return [replies[index] for index in range(len(self.pipes))]

    def _all(self, name: str, argument: Any = None, *, show: str = "") -> list[Any]:
        return self._call(name, [argument] * len(self.pipes), show=show)

    def cpu_start(self) -> None:
        self._cpu_start = [tree_cpu_seconds([pid]) for pid in self.pids]
        self._wall_start = time.monotonic()

    def cpu_stop(self) -> list[float]:
        """CPU % of one core used by each worker since ``cpu_start``."""
        wall = max(time.monotonic() - self._wall_start, 1e-9)
        return [
            100.0 * (tree_cpu_seconds([pid]) - start) / wall
            for pid, start in zip(self.pids, self._cpu_start, strict=True)
        ]

    # --- commands -------------------------------------------------------------------------
    def connect(
        self, indexes: list[int] | None = None, *, concurrency: int = 100, sync: bool = True
    ) -> dict[str, Any]:
        per_worker = max(1, concurrency // len(self.pipes))
        replies = self._all("connect", (indexes, per_worker, sync))
        started = min(reply["started"] for reply in replies)
        hello = sorted(t for reply in replies for t in reply["hello_at"])
        live = sorted(t for reply in replies for t in reply["live_at"])
        failures: dict[str, int] = {}
        for reply in replies:
            for kind, count in reply["failures"].items():
                failures[kind] = failures.get(kind, 0) + count
        return {"started": started, "hello_at": hello, "live_at": live, "failures": failures}

    def close(self, indexes: list[int] | None = None) -> None:
        self._all("close", indexes)

    def run_step(
        self, *, step: int, kind: str, rate: float, duration: float, text_size: int = 40
    ) -> dict[str, Any]:
        """Offer ``rate`` sends (or pings) per second in total for ``duration`` seconds."""
        counts = self.sender_counts if kind == "send" else self.device_counts
        total = sum(counts)
        start_at = time.monotonic() + START_DELAY_SECONDS
        plans = [
            StepPlan(
                step=step,
                kind=kind,
                start_at=start_at,
                duration=duration,
                # This worker's share of the rate is its share of the senders.
                interval=(1.0 / (rate * count / total)) if count and rate > 0 else 0.0,
                text_size=text_size,
            )
            for count in counts
        ]
        replies = self._call("run", plans, show=f"step {step} ({rate:,.0f}/s)")
        return {
            "sent": sum(reply["sent"] for reply in replies),
            "late_ms": max(reply["late_ms"] for reply in replies),
        }

    def progress(self) -> dict[str, int]:
        replies = self._all("progress")
        return {key: sum(reply[key] for reply in replies) for key in replies[0]}

    def drain(
        self, *, timeout: float, quiet: float = 2.0, deliveries: bool = True
    ) -> dict[str, int]:
        """Wait until every sent message was acknowledged (and, with ``deliveries``,
        delivered), or until nothing moved for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last: dict[str, int] = {}
        last_change = time.monotonic()
        while True:
            now_progress = self.progress()
            done = now_progress["acks"] + now_progress["errors"] >= now_progress["sent"] and (
                not deliveries or now_progress["delivered"] >= now_progress["owed"]
            )
            if now_progress != last:
                last, last_change = now_progress, time.monotonic()
            if done or time.monotonic() > deadline or time.monotonic() - last_change > quiet:
                return now_progress
            time.sleep(0.1)

    def step_stats(self, step: int) -> dict[str, Any]:
        replies = self._all("step_stats", step)
        latencies: array[float] = array("d")
        acks: array[float] = array("d")
        errors: dict[str, int] = {}
        for reply in replies:
            latencies.frombytes(reply["latencies"])
            acks.frombytes(reply["ack_latencies"])
            for code, count in reply["errors"].items():
                errors[code] = errors.get(code, 0) + count
        return {"latencies": latencies, "ack_latencies": acks, "errors": errors}

    def watch(self) -> int:
        """Send ``watch`` from every connected device; returns the snapshots received."""
        return sum(self._all("watch"))

    def presence_events(self) -> list[tuple[int, str | None, float]]:
        """(user id, status, arrival monotonic time) received since the last call."""
        return [event for events in self._all("presence") for event in events]

    def ledger(self) -> Ledger:
        merged = Ledger()
        for ledger in self._all("ledger"):
            merged.merge(ledger)
        return merged

    def shutdown(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._all("quit")
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
