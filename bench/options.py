"""Benchmark sizes: ``tiny`` (CI, seconds), ``small`` (a shared machine), ``full`` (the
issue's sizes, for a quiet machine). Every field can be overridden on the command line."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .loadgen_worker import Faults


@dataclass
class Options:
    config: str = "embedded"
    processes: int = 1
    servers: list[str] = field(default_factory=lambda: ["uvicorn"])
    # The calibration targets, run first: the relay and the Django Channels tutorial.
    relay: bool = True
    tutorial: bool = True
    loadgen_processes: int = 1
    first_port: int = 18100
    step_seconds: float = 5.0
    # After a step, stop waiting for stragglers once nothing arrived for this long.
    drain_quiet_seconds: float = 2.0
    # 1:1
    pairs: int = 100
    rates: list[float] = field(default_factory=lambda: [100, 200, 400, 800, 1600])
    # group fan-out (rates are sends/s; deliveries/s = sends/s x (group size - 1))
    groups: int = 2
    group_size: int = 100
    group_rates: list[float] = field(default_factory=lambda: [5, 10, 20, 40, 80])
    # sweeps continue past the listed rates (x1.5 per step) while steps pass, up to this
    # many extra steps, so each target's maximum is found
    extra_steps: int = 4
    # idle connections
    idle_connections: int = 2_000
    # how long the open, idle connections are watched for the server's background CPU
    # (acks, heartbeats and their pongs, presence ticks, timers)
    idle_seconds: float = 30.0
    connect_concurrency: int = 200
    # reconnect storm: pairs, messages each offline device misses
    storm_pairs: int = 200
    storm_messages: int = 5
    # history
    history_messages: int = 1_000_000
    history_reads: int = 500
    # heartbeats
    heartbeat_connections: int = 400
    heartbeat_rates: list[float] = field(default_factory=lambda: [1000, 2000, 4000, 8000])
    # Clients acknowledge every this many seconds (0: never; shows what acks cost).
    ack_seconds: float = 1.0
    # Sample the chat server with py-spy during every rate step (costs some CPU).
    profile: bool = False
    faults: Faults = field(default_factory=Faults)


SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "step_seconds": 1.0,
        "drain_quiet_seconds": 0.5,
        "pairs": 3,
        "rates": [10, 20],
        "groups": 1,
        "group_size": 4,
        "group_rates": [5],
        "extra_steps": 0,
        "idle_connections": 20,
        "idle_seconds": 1.0,
        "storm_pairs": 4,
        "storm_messages": 3,
        "history_messages": 2_000,
        "history_reads": 30,
        "heartbeat_connections": 6,
        "heartbeat_rates": [30],
    },
    "small": {},
    "full": {
        "step_seconds": 10.0,
        "loadgen_processes": 2,
        "pairs": 200,
        "rates": [250, 500, 1000, 1500, 2000, 3000, 4000],
        "groups": 4,
        "group_rates": [25, 50, 100, 150, 200, 300],
        "idle_connections": 10_000,
        "idle_seconds": 60.0,
        "storm_pairs": 1_000,
        "history_messages": 10_000_000,
        "history_reads": 2_000,
        "heartbeat_connections": 1_000,
        "heartbeat_rates": [2_000, 5_000, 10_000, 15_000, 20_000],
    },
}


def options_for(size: str, **overrides: Any) -> Options:
    values = {**SIZES[size], **{k: v for k, v in overrides.items() if v is not None}}
    return replace(Options(), **values)
