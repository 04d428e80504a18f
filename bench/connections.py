"""Workloads 3 and 4: idle connections (memory, connect rate) and the reconnect storm."""

from __future__ import annotations

import time

from .loadgen import LoadGenerator
from .options import Options
from .procstat import CpuMeter, tree_rss_bytes
from .stats import latency_summary
from .targets import Target
from .workload import (
    Result,
    connect_all,
    ledger_summary,
    log,
    make_population,
    profiling,
    result_for,
)


def idle(target: Target, options: Options) -> Result:
    result = result_for(target, "idle")
    population = make_population(target, users=options.idle_connections, group_size=0)
    time.sleep(1.0)
    rss_before = tree_rss_bytes(target.pids)
    gen = LoadGenerator(population, processes=options.loadgen_processes)
    try:
        meter = CpuMeter(target.pids)
        meter.start(time.monotonic())
        with profiling(target, options, result, "opening the connections"):
            connected = gen.connect(concurrency=options.connect_concurrency, sync=False)
        server_cpu, _ = meter.stop(time.monotonic())
        time.sleep(2.0)
        rss_after = tree_rss_bytes(target.pids)
        # Connected and doing nothing, as a phone in a pocket: the clients ping every
        # heartbeat interval; the server keeps leases, timers and its own pings going.
        meter.start(time.monotonic())
        time.sleep(options.idle_seconds)
        idle_cpu, _ = meter.stop(time.monotonic())
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
            "idle_cpu_percent": idle_cpu,
            "idle_seconds": options.idle_seconds,
            "server_processes": len(target.pids),
        }
        result.rows.append(dict(result.summary))
        log(
            f"  {opened:,} idle connections: {per_connection / 1024:.1f} KiB each, "
            f"{result.summary['connects_per_s']:,.0f} connects/s, "
            f"{idle_cpu:.1f}% of a core while idle for {options.idle_seconds:.0f} s"
        )
    finally:
        gen.shutdown()
    return result


def storm(target: Target, options: Options) -> Result:
    """B devices go offline, A devices send them messages and go offline too, then every
    device reconnects at the same moment and syncs from its cursor."""
    result = result_for(target, "storm")
    population = make_population(target, users=2 * options.storm_pairs, group_size=2, senders=1)
    senders = [device.index for device in population.devices if device.conversation_id]
    receivers = [device.index for device in population.devices if not device.conversation_id]
    gen = LoadGenerator(population, processes=options.loadgen_processes)
    try:
        connect_all(gen, options, result)
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
        with profiling(target, options, result, "the storm"):
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
            **ledger_summary(ledger),
        }
        result.rows.append(dict(result.summary))
        log(
            f"  {len(live):,}/{len(population.devices):,} devices live after "
            f"{result.summary['all_live_s']:.2f} s; lost {result.summary['lost']}, "
            f"duplicates {result.summary['duplicates']}"
        )
    finally:
        gen.shutdown()
    return result
