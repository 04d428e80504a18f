"""Workload 6: heartbeats (ping rate, database writes) and presence transition fan-out."""

from __future__ import annotations

import time
from typing import Any

from .history import database_writes_probe
from .loadgen import LoadGenerator
from .options import Options
from .population import Population
from .procstat import CpuMeter
from .stats import latency_summary
from .targets import Target
from .workload import (
    MAX_FRAMES_PER_CONNECTION,
    ONE_TO_ONE_P99_MS,
    Result,
    connect_all,
    log,
    make_population,
    profiling,
    result_for,
)


def _wait_for_presence(
    gen: LoadGenerator, *, users: set[int], status: str, timeout: float
) -> list[tuple[int, str | None, float]]:
    """Collect presence events until every user in ``users`` was reported in ``status``."""
    events: list[tuple[int, str | None, float]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += gen.presence_events()
        if users <= {user for user, seen, _ in events if seen == status}:
            break
        time.sleep(0.1)
    return [event for event in events if event[1] == status and event[0] in users]


def _presence_transitions(
    target: Target,
    gen: LoadGenerator,
    population: Population,
    options: Options,
    result: Result,
) -> list[dict[str, Any]]:
    """Half of the devices (one per direct pair) go offline at once, then come back; their
    partners watch. Latency: from the moment the batch starts to each partner's event."""
    gen.watch()
    gen.presence_events()
    leavers = [device for device in population.devices if not device.conversation_id]
    users = {device.user_id for device in leavers}
    indexes = [device.index for device in leavers]
    rows = []
    for status in ("offline", "online"):
        started = time.monotonic()
        with profiling(target, options, result, f"presence: {len(users):,} users go {status}"):
            if status == "offline":
                gen.close(indexes)
            else:
                gen.connect(indexes, concurrency=options.connect_concurrency, sync=True)
            events = _wait_for_presence(gen, users=users, status=status, timeout=90.0)
        latencies = [1000 * (arrived - started) for _, _, arrived in events]
        rows.append(
            {
                "transition": f"{len(users):,} users go {status} at once",
                "expected_events": len(users),
                "events": len(events),
                **latency_summary(latencies),
            }
        )
        log(
            f"  presence {status}: {len(events)}/{len(users)} events, "
            f"p50 {rows[-1]['p50']:.0f}  p99 {rows[-1]['p99']:.0f} ms after the batch started"
        )
    return rows


def heartbeats(target: Target, options: Options) -> Result:
    result = result_for(target, "heartbeats")
    # Direct pairs: each pair's partners see each other's presence.
    population = make_population(
        target, users=options.heartbeat_connections, group_size=2, senders=1
    )
    cap = MAX_FRAMES_PER_CONNECTION * options.heartbeat_connections
    gen = LoadGenerator(population, processes=options.loadgen_processes)
    try:
        connect_all(gen, options, result)
        writes = database_writes_probe(target)
        best = 0.0
        for step, rate in enumerate(r for r in options.heartbeat_rates if r <= cap):
            row = _ping_step(target, gen, options, result, step=step, rate=rate)
            result.rows.append(row)
            if row["sustained"]:
                best = rate
            else:
                break
        database_writes = writes()
        transitions = _presence_transitions(target, gen, population, options, result)
        result.rows.extend(transitions)
        result.summary = {
            "max_sustained_heartbeats_per_s": best,
            "per_process": best / len(target.ports),
            "database_writes_during_heartbeats": database_writes,
            "offline_fanout_p99_ms": transitions[0]["p99"],
            "online_fanout_p99_ms": transitions[1]["p99"],
            "presence_events_missing": sum(r["expected_events"] - r["events"] for r in transitions),
            "connections": len(population.devices),
        }
    finally:
        gen.shutdown()
    return result


def _ping_step(
    target: Target, gen: LoadGenerator, options: Options, result: Result, *, step: int, rate: float
) -> dict[str, Any]:
    """One step of pings at ``rate`` per second: the acks' latency and the CPU it cost."""
    meter = CpuMeter(target.pids)
    meter.start(time.monotonic())
    gen.cpu_start()
    with profiling(target, options, result, f"pings at {rate:,.0f}/s"):
        gen.run_step(step=step, kind="ping", rate=rate, duration=options.step_seconds)
    server_cpu, machine = meter.stop(time.monotonic())
    loadgen_cpu = gen.cpu_stop()
    gen.drain(timeout=10, quiet=options.drain_quiet_seconds)
    stats = gen.step_stats(step)
    latency = latency_summary(stats["ack_latencies"])
    handled = len(stats["ack_latencies"]) / options.step_seconds
    row: dict[str, Any] = {
        "step": step,
        "offered": rate,
        "handled_per_s": handled,
        **latency,
        "server_cpu": server_cpu,
        "per_process_per_s": handled / len(target.ports),
        "loadgen_cpu_max": max(loadgen_cpu),
        "machine_busy": machine,
    }
    row["sustained"] = handled >= 0.99 * rate and latency["p99"] <= ONE_TO_ONE_P99_MS
    log(
        f"  offered {rate:>8,.0f}/s  handled {handled:>8,.0f}/s  p50 {row['p50']:.1f}  "
        f"p99 {row['p99']:.1f} ms  server cpu {server_cpu:.0f}%  "
        f"loadgen cpu {row['loadgen_cpu_max']:.0f}%"
    )
    return row
