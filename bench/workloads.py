"""The six workloads. Each runs against one started target and returns a ``Result``:
rows (one per rate step or measurement) and a summary of headline figures.

Every workload that moves messages ends with the merged loss/duplicate ledger of all
load generator processes (``bench.ledger``).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import history, profile, setup_api
from .ledger import Ledger
from .loadgen import LoadGenerator
from .options import Options
from .population import Population
from .procstat import CpuMeter, tree_rss_bytes
from .stats import latency_summary, overloaded, sustained
from .targets import Target

# Per-connection frame limit of the chat server is 30/s (burst 60); staying under it keeps
# the flood control out of the measurement.
MAX_FRAMES_PER_CONNECTION = 25.0
ONE_TO_ONE_P99_MS = 100.0
GROUP_P99_MS = 250.0
# A generator process busier than this may itself be what limits a step.
LOADGEN_BUSY_PERCENT = 85.0


@dataclass
class Result:
    workload: str
    target: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # step label -> Markdown summary of a py-spy profile of the server
    profiles: dict[str, str] = field(default_factory=dict)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_population(
    target: Target, *, users: int, group_size: int, senders: int | None = None
) -> Population:
    if target.kind == "relay":
        return setup_api.relay_population(
            target.ws_urls, users=users, group_size=group_size, senders_per_conversation=senders
        )
    _log(f"  creating {users:,} users through the REST API ...")
    return setup_api.chat_population(
        target.base_urls,
        target.ws_urls,
        users=users,
        group_size=group_size,
        senders_per_conversation=senders,
    )


def _ledger_summary(ledger: Ledger) -> dict[str, int]:
    return {
        "acknowledged": len(ledger.acked),
        "lost": ledger.lost(),
        "duplicates": ledger.duplicates,
        "gaps": ledger.gaps,
        "unexpected": ledger.unexpected(),
    }


def _connect_all(gen: LoadGenerator, options: Options, result: Result) -> None:
    connected = gen.connect(concurrency=options.connect_concurrency, sync=True)
    if connected["failures"]:
        result.notes.append(f"connect failures: {connected['failures']}")
        _log(f"  connect failures: {connected['failures']}")


# --- 1 and 2: open-loop rate sweeps ---------------------------------------------------------
def _sweep(
    target: Target,
    population: Population,
    options: Options,
    *,
    workload: str,
    rates: list[float],
    p99_limit_ms: float,
) -> Result:
    result = Result(workload=workload, target=target.name)
    senders = sum(1 for device in population.devices if device.conversation_id)
    cap = MAX_FRAMES_PER_CONNECTION * senders
    gen = LoadGenerator(
        population,
        processes=options.loadgen_processes,
        faults=options.faults,
        ack_seconds=options.ack_seconds,
    )
    try:
        _connect_all(gen, options, result)
        planned = [rate for rate in rates if rate <= cap]
        _warm_up(gen, options, rate=planned[0] / 2 if planned else 1.0)
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
            row = _judged_step(target, gen, options, step=step, rate=rate, limit=p99_limit_ms)
            result.rows.append(row)
            _log(_row_line(row))
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
            elif overloaded(row, p99_limit_ms=p99_limit_ms) or not planned:
                break
        if best is not None:
            # The latency target is stated at 70% of the maximum sustained rate.
            check = _judged_step(
                target, gen, options, step=step, rate=0.7 * best["offered"], limit=p99_limit_ms
            )
            check["at_70_percent"] = True
            result.rows.append(check)
            _log(_row_line(check) + "  (70% of max)")
        _keep_profiles(result, best)
        ledger = gen.ledger()
        result.summary = {
            **_ledger_summary(ledger),
            "max_sustained_rate": best["offered"] if best else 0.0,
            "max_sustained_deliveries_per_s": best["delivered_per_s"] if best else 0.0,
            "server_cpu_ms_per_msg": statistics.median(
                row["server_cpu_ms_per_msg"] for row in result.rows
            )
            if result.rows
            else float("nan"),
            "p99_limit_ms": p99_limit_ms,
            "rate_cap": cap,
            "connections": len(population.devices),
        }
    finally:
        gen.shutdown()
    return result


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


# --- 3: idle connections --------------------------------------------------------------------
def idle(target: Target, options: Options) -> Result:
    result = Result(workload="idle", target=target.name)
    population = make_population(target, users=options.idle_connections, group_size=0)
    time.sleep(1.0)
    rss_before = tree_rss_bytes(target.pids)
    gen = LoadGenerator(population, processes=options.loadgen_processes)
    try:
        meter = CpuMeter(target.pids)
        meter.start(time.monotonic())
        connected = gen.connect(concurrency=options.connect_concurrency, sync=False)
        server_cpu, _ = meter.stop(time.monotonic())
        time.sleep(2.0)
        rss_after = tree_rss_bytes(target.pids)
        hello = connected["hello_at"]
        opened = len(hello)
        elapsed = (hello[-1] - connected["started"]) if hello else float("nan")
        per_connection = (rss_after - rss_before) / max(opened, 1)
        result.summary = {
            "connections": opened,
            "failures": connected["failures"],
            "rss_before_mib": rss_before / 2**20,
            "rss_after_mib": rss_after / 2**20,
            "kib_per_connection": per_connection / 1024,
            "connects_per_s": opened / elapsed if opened else 0.0,
            "server_cpu_while_connecting": server_cpu,
            "server_processes": len(target.pids),
        }
        result.rows.append(dict(result.summary))
        _log(
            f"  {opened:,} idle connections: {per_connection / 1024:.1f} KiB each, "
            f"{result.summary['connects_per_s']:,.0f} connects/s"
        )
    finally:
        gen.shutdown()
    return result


# --- 4: reconnect storm ---------------------------------------------------------------------
def storm(target: Target, options: Options) -> Result:
    """B devices go offline, A devices send them messages and go offline too, then every
    device reconnects at the same moment and syncs from its cursor."""
    result = Result(workload="storm", target=target.name)
    population = make_population(target, users=2 * options.storm_pairs, group_size=2, senders=1)
    senders = [device.index for device in population.devices if device.conversation_id]
    receivers = [device.index for device in population.devices if not device.conversation_id]
    gen = LoadGenerator(population, processes=options.loadgen_processes)
    try:
        _connect_all(gen, options, result)
        gen.close(receivers)
        rate = min(len(senders) * 5.0, 2000.0)
        gen.run_step(
            step=0,
            kind="send",
            rate=rate,
            duration=options.storm_messages * len(senders) / rate,
        )
        # The receivers are offline: wait for the acknowledgements only.
        gen.drain(timeout=30, quiet=options.drain_quiet_seconds, deliveries=False)
        gen.close(senders)
        time.sleep(1.0)
        meter = CpuMeter(target.pids)
        meter.start(time.monotonic())
        # Everyone at once: the concurrency is the number of devices.
        storm_result = gen.connect(concurrency=len(population.devices), sync=True)
        server_cpu, _ = meter.stop(time.monotonic())
        started = storm_result["started"]
        live = [t - started for t in storm_result["live_at"]]
        ledger = gen.ledger()
        summary = latency_summary([1000 * t for t in live])
        result.summary = {
            "devices": len(population.devices),
            "live": len(live),
            "failures": storm_result["failures"],
            "missed_messages_per_device": options.storm_messages,
            "all_live_s": max(live) if live else float("nan"),
            "time_to_live_p50_ms": summary["p50"],
            "time_to_live_p99_ms": summary["p99"],
            "reconnects_per_s": len(live) / max(live) if live else 0.0,
            "server_cpu": server_cpu,
            **_ledger_summary(ledger),
        }
        result.rows.append(dict(result.summary))
        _log(
            f"  {len(live):,}/{len(population.devices):,} devices live after "
            f"{result.summary['all_live_s']:.2f} s; lost {result.summary['lost']}, "
            f"duplicates {result.summary['duplicates']}"
        )
    finally:
        gen.shutdown()
    return result


# --- 5: history -----------------------------------------------------------------------------
def history_pages(target: Target, options: Options) -> Result:
    result = Result(workload="history", target=target.name)
    if target.kind == "relay":
        result.notes.append("the relay keeps no history")
        return result
    population = make_population(target, users=2, group_size=2)
    conversation = next(iter(population.conversations.values()))
    reader = population.devices[1]
    _log(f"  loading {options.history_messages:,} messages ...")
    loaded = history.load(
        target.env,
        conversation_id=conversation.id,
        sender_id=conversation.member_ids[0],
        count=options.history_messages,
    )
    _log(f"  loaded in {loaded['seconds']:.1f} s ({loaded['rows_per_s']:,.0f} rows/s)")
    store = history.probe_store(
        target.env,
        conversation_id=conversation.id,
        first_id=loaded["first_id"],
        last_id=loaded["last_id"],
        reads=options.history_reads,
    )
    for concurrency in (1, 8):
        for position in ("newest", "random"):
            timings = history.read_pages_http(
                target.base_urls,
                token=reader.token,
                conversation_id=conversation.id,
                first_id=loaded["first_id"],
                last_id=loaded["last_id"],
                reads=options.history_reads,
                concurrency=concurrency,
                position=position,
            )
            row = {
                "measured": "REST GET, client side",
                "position": position,
                "concurrency": concurrency,
                **latency_summary(timings["latencies"]),
                "pages_per_s": timings["pages_per_s"],
            }
            result.rows.append(row)
    for position, latencies in store.items():
        result.rows.append(
            {
                "measured": "store.page_conversation, in process",
                "position": position,
                "concurrency": 1,
                **latency_summary(latencies),
                "pages_per_s": float("nan"),
            }
        )
    for row in result.rows:
        _log(
            f"  {row['measured']:<38} {row['position']:<7} x{row['concurrency']}: "
            f"p50 {row['p50']:.2f}  p99 {row['p99']:.2f} ms"
        )
    result.summary = {
        "stored_messages": loaded["count"],
        "load_rows_per_s": loaded["rows_per_s"],
        "rest_p99_ms_random_c1": next(
            r["p99"]
            for r in result.rows
            if r["measured"].startswith("REST")
            and r["position"] == "random"
            and r["concurrency"] == 1
        ),
        "store_p99_ms_random": latency_summary(store["random"])["p99"],
    }
    return result


# --- 6: heartbeats and presence -------------------------------------------------------------
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
    gen: LoadGenerator, population: Population, options: Options
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
        _log(
            f"  presence {status}: {len(events)}/{len(users)} events, "
            f"p50 {rows[-1]['p50']:.0f}  p99 {rows[-1]['p99']:.0f} ms after the batch started"
        )
    return rows


def heartbeats(target: Target, options: Options) -> Result:
    result = Result(workload="heartbeats", target=target.name)
    # Direct pairs: each pair's partners see each other's presence.
    population = make_population(
        target, users=options.heartbeat_connections, group_size=2, senders=1
    )
    cap = MAX_FRAMES_PER_CONNECTION * options.heartbeat_connections
    gen = LoadGenerator(population, processes=options.loadgen_processes)
    try:
        _connect_all(gen, options, result)
        writes = history.database_writes_probe(target)
        best = 0.0
        for step, rate in enumerate(r for r in options.heartbeat_rates if r <= cap):
            meter = CpuMeter(target.pids)
            meter.start(time.monotonic())
            gen.cpu_start()
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
            result.rows.append(row)
            _log(
                f"  offered {rate:>8,.0f}/s  handled {handled:>8,.0f}/s  p50 {row['p50']:.1f}  "
                f"p99 {row['p99']:.1f} ms  server cpu {server_cpu:.0f}%  "
                f"loadgen cpu {row['loadgen_cpu_max']:.0f}%"
            )
            if row["sustained"]:
                best = rate
            else:
                break
        database_writes = writes()
        transitions = _presence_transitions(gen, population, options)
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


WORKLOADS: dict[str, Callable[[Target, Options], Result]] = {
    "oneone": one_to_one,
    "group": group,
    "idle": idle,
    "storm": storm,
    "history": history_pages,
    "heartbeats": heartbeats,
}
