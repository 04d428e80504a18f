"""Workloads 1 and 2: open-loop rate sweeps, 1:1 pairs and groups of 100."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from . import profile
from .loadgen import LoadGenerator
from .options import Options
from .population import Population
from .procstat import CpuMeter
from .stats import latency_summary, overloaded, sustained
from .targets import Target
from .workload import (
    MAX_FRAMES_PER_CONNECTION,
    ONE_TO_ONE_P99_MS,
    Result,
    connect_all,
    ledger_summary,
    log,
    make_population,
    result_for,
)

GROUP_P99_MS = 250.0
# A generator process busier than this may itself be what limits a step.
LOADGEN_BUSY_PERCENT = 85.0


def _sweep(
    target: Target,
    population: Population,
    options: Options,
    *,
    workload: str,
    rates: list[float],
    p99_limit_ms: float,
) -> Result:
    result = result_for(target, workload)
    senders = sum(1 for device in population.devices if device.conversation_id)
    cap = MAX_FRAMES_PER_CONNECTION * senders
    gen = LoadGenerator(
        population,
        processes=options.loadgen_processes,
        faults=options.faults,
        ack_seconds=options.ack_seconds,
    )
    try:
        connect_all(gen, options, result)
        planned = [rate for rate in rates if rate <= cap]
        _warm_up(gen, options, rate=planned[0] / 2 if planned else 1.0)
        best, step = _climb(
            target, gen, options, result, planned=planned, cap=cap, limit=p99_limit_ms
        )
        if best is not None:
            # The latency target is stated at 70% of the maximum sustained rate.
            check = _judged_step(
                target, gen, options, step=step, rate=0.7 * best["offered"], limit=p99_limit_ms
            )
            check["at_70_percent"] = True
            result.rows.append(check)
            log(_row_line(check) + "  (70% of max)")
        _keep_profiles(result, best)
        result.summary = {
            **_sweep_summary(result, gen, best, p99_limit_ms=p99_limit_ms),
            "rate_cap": cap,
            "connections": len(population.devices),
        }
    finally:
        gen.shutdown()
    return result


def _climb(
    target: Target,
    gen: LoadGenerator,
    options: Options,
    result: Result,
    *,
    planned: list[float],
    cap: float,
    limit: float,
) -> tuple[dict[str, Any] | None, int]:
    """Step through the planned rates (then ``extra_steps`` more, 1.5 times higher each)
    until a step is overloaded; return the best sustained row and the next step number."""
    extra = options.extra_steps
    halvings = 3
    step = 1
    best: dict[str, Any] | None = None
    while planned or extra > 0:
        if planned:
            rate = planned.pop(0)
        else:
            rate = min(cap, result.rows[-1]["offered"] * 1.5)
            extra -= 1
            if rate <= result.rows[-1]["offered"]:
                break
        row = _judged_step(target, gen, options, step=step, rate=rate, limit=limit)
        result.rows.append(row)
        log(_row_line(row))
        if row["loadgen_cpu_max"] > LOADGEN_BUSY_PERCENT:
            result.notes.append(
                f"at {rate:,.0f}/s a load generator process used "
                f"{row['loadgen_cpu_max']:.0f}% of a core: the generator may be the limit "
                "(use more --loadgen-processes)"
            )
        step += 1
        if row["sustained"]:
            best = row
        elif best is None and halvings > 0 and rate / 2 >= 1:
            # Failing from the first step teaches nothing: look below it instead.
            halvings -= 1
            planned = [rate / 2]
        elif overloaded(row, p99_limit_ms=limit) or not planned:
            break
    return best, step


def _sweep_summary(
    result: Result, gen: LoadGenerator, best: dict[str, Any] | None, *, p99_limit_ms: float
) -> dict[str, Any]:
    return {
        **ledger_summary(gen.ledger()),
        "max_sustained_rate": best["offered"] if best else 0.0,
        "max_sustained_deliveries_per_s": best["delivered_per_s"] if best else 0.0,
        "server_cpu_ms_per_msg": statistics.median(
            row["server_cpu_ms_per_msg"] for row in result.rows
        )
        if result.rows
        else float("nan"),
        "p99_limit_ms": p99_limit_ms,
        # The group target is stated at p99 <= 100 ms, tighter than the sweep's limit.
        "max_deliveries_per_s_at_p99_100ms": max(
            (
                row["delivered_per_s"]
                for row in result.rows
                if sustained(row, p99_limit_ms=ONE_TO_ONE_P99_MS)
            ),
            default=0.0,
        ),
    }


WARM_UP_STEP = 0


def _warm_up(gen: LoadGenerator, options: Options, *, rate: float) -> None:
    """A short unrecorded step first: the server's first sends open database connections
    and fill caches, which would otherwise land in the first step's tail latency.
    Its messages still go through the loss/duplicate ledger."""
    gen.run_step(step=WARM_UP_STEP, kind="send", rate=rate, duration=min(2.0, options.step_seconds))
    gen.drain(timeout=10.0, quiet=options.drain_quiet_seconds)
    gen.step_stats(WARM_UP_STEP)


def _keep_profiles(result: Result, best: dict[str, Any] | None) -> None:
    """Summaries of the profiles of the best sustained step and the first one that failed."""
    failed = next((row for row in result.rows if not row["sustained"]), None)
    for label, row in (("highest sustained", best), ("first not sustained", failed)):
        if row is not None and row.get("profile"):
            title = f"{label} step ({row['offered']:,.0f}/s offered)"
            result.profiles[title] = profile.summarise(Path(row["profile"]))
    for row in result.rows:
        if row.get("profile"):
            shutil.rmtree(row["profile"], ignore_errors=True)
        row.pop("profile", None)


def _judged_step(
    target: Target, gen: LoadGenerator, options: Options, *, step: int, rate: float, limit: float
) -> dict[str, Any]:
    """One rate step, with its losses and duplicates from the merged ledger."""
    duplicates_before = gen.ledger_duplicates
    row = _rate_step(target, gen, options, step=step, rate=rate)
    ledger = gen.ledger()
    gen.ledger_duplicates = ledger.duplicates
    row["lost"] = ledger.lost(step)
    row["duplicates"] = ledger.duplicates - duplicates_before
    row["sustained"] = sustained(row, p99_limit_ms=limit)
    return row


def _rate_step(
    target: Target, gen: LoadGenerator, options: Options, *, step: int, rate: float
) -> dict[str, Any]:
    meter = CpuMeter(target.pids)
    profiling: list[subprocess.Popen[bytes]] = []
    profile_dir = Path(tempfile.gettempdir()) / f"bench-profile-{os.getpid()}-{id(gen)}-{step}"
    if options.profile and target.kind == "chat":
        profiling = profile.start(target.pids, seconds=options.step_seconds, folder=profile_dir)
    started = time.monotonic()
    meter.start(started)
    gen.cpu_start()
    sent = gen.run_step(step=step, kind="send", rate=rate, duration=options.step_seconds)
    profile.finish(profiling)
    server_cpu, machine_busy = meter.stop(time.monotonic())
    loadgen_cpu = gen.cpu_stop()
    progress = gen.drain(
        timeout=max(10.0, options.step_seconds * 2), quiet=options.drain_quiet_seconds
    )
    stats = gen.step_stats(step)
    latency = latency_summary(stats["latencies"])
    acks = latency_summary(stats["ack_latencies"])
    owed_per_message = _recipients_per_message(gen.population)
    delivered = len(stats["latencies"])
    return {
        "step": step,
        "offered": rate,
        "sent": sent["sent"],
        "owed": sent["sent"] * owed_per_message,
        "delivered": delivered,
        "delivered_per_s": delivered / options.step_seconds,
        **latency,
        "ack_p50": acks["p50"],
        "ack_p99": acks["p99"],
        "errors": sum(stats["errors"].values()),
        "server_cpu": server_cpu,
        # CPU is what a busy shared machine distorts least: the cost of one message.
        "server_cpu_ms_per_msg": server_cpu * 10 * options.step_seconds / max(sent["sent"], 1),
        "machine_busy": machine_busy,
        "loadgen_cpu_max": max(loadgen_cpu),
        "schedule_late_ms": sent["late_ms"],
        "unfinished": max(0, progress["owed"] - progress["delivered"]),
        "profile": str(profile_dir) if profiling else "",
        "lost": 0,
        "duplicates": 0,
    }


def _recipients_per_message(population: Population) -> int:
    sizes = {len(c.member_ids) - 1 for c in population.conversations.values()}
    return max(sizes) if sizes else 0


def _row_line(row: dict[str, Any]) -> str:
    return (
        f"  offered {row['offered']:>8,.0f}/s  delivered {row['delivered_per_s']:>9,.0f}/s  "
        f"p50 {row['p50']:7.1f}  p99 {row['p99']:8.1f}  max {row['max']:8.1f} ms  "
        f"server cpu {row['server_cpu']:4.0f}%  loadgen cpu {row['loadgen_cpu_max']:4.0f}%  "
        f"errors {row['errors']}  {'ok' if row['sustained'] else 'NOT sustained'}"
    )


def one_to_one(target: Target, options: Options) -> Result:
    population = make_population(target, users=2 * options.pairs, group_size=2)
    return _sweep(
        target,
        population,
        options,
        workload="1:1",
        rates=options.rates,
        p99_limit_ms=ONE_TO_ONE_P99_MS,
    )


def group(target: Target, options: Options) -> Result:
    population = make_population(
        target, users=options.groups * options.group_size, group_size=options.group_size
    )
    return _sweep(
        target,
        population,
        options,
        workload="group",
        rates=options.group_rates,
        p99_limit_ms=GROUP_P99_MS,
    )
