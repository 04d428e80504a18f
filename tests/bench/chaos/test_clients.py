"""The fault-injection workload against live server processes (production config: two
``serve`` processes sharing PostgreSQL and Redis; embedded: one), without server faults.

A clean run, with a burst of reconnects of every device in the middle, is judged clean by
the checker; the same run with one client that skips a ``message.new`` (a deliberate bug)
is judged lossy: the checker is proven able to fail.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest

from bench.chaos import report
from bench.chaos.checker import HISTORY, check, check_presence
from bench.chaos.clients import DropFault
from bench.chaos.workload import Workload, history_from_database
from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e


def _workload(
    server_env: dict[str, str],
    servers: Callable[[int], list[ServerProcess]],
    fault: DropFault | None = None,
) -> Workload:
    # Sign-ups and log-ins of the workload come from one address.
    server_env["THROTTLE_SIGNUP"] = server_env["THROTTLE_LOGIN"] = "1000000/min"
    started = servers(2 if os.environ.get("REDIS_URL") else 1)
    return Workload(
        [server.base_url for server in started],
        [server.ws_url for server in started],
        users=4,
        devices_per_user=2,
        groups=1,
        group_size=3,
        rate=25,
        seed=7,
        fault=fault,
    )


async def _until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _unsettled(workload: Workload) -> str:
    return (
        f"live {[c.account.key for c in workload.clients if c.live]}, "
        f"outboxes {[list(c.outbox) for c in workload.clients]}, "
        f"undelivered {workload.ledger.undelivered()}\n"
        + report.markdown(check(workload.ledger), plot=None)
    )


async def test_a_clean_run_with_a_reconnect_burst_passes_the_checker(
    server_env: dict[str, str], servers: Callable[[int], list[ServerProcess]]
) -> None:
    workload = _workload(server_env, servers)
    await workload.start()
    try:
        await _until(lambda: len(workload.ledger.acks) >= 30)
        await workload.reconnect_all()
        await _until(lambda: len(workload.ledger.acks) >= 60 and workload.all_live())
        assert await workload.settle(20), _unsettled(workload)
        history = await workload.read_history()
        truth = workload.presence_truth()
        presence = await check_presence(workload.read_presence, truth, within=20)
    finally:
        await workload.stop()
    result = check(workload.ledger, history=history, presence=presence)
    assert result.ok, report.markdown(result, plot=None)
    totals = result.totals()
    assert totals["acknowledged"] >= 60
    assert (totals["lost"], totals["duplicated"], totals["reordered"], totals["gaps"]) == (
        0,
        0,
        0,
        0,
    )
    assert set(truth.values()) == {"online"}
    # Every device went down in the burst and came back.
    downs = {change.device for change in workload.ledger.timeline if not change.live}
    assert downs == set(workload.ledger.devices)
    if "DATABASE_URL" in server_env:
        stored = history_from_database(server_env["DATABASE_URL"], list(workload.ledger.members))
        assert sorted(row.id for row in stored) == sorted(row.id for row in history)


async def test_a_client_that_skips_a_message_is_reported_as_a_loss(
    server_env: dict[str, str], servers: Callable[[int], list[ServerProcess]]
) -> None:
    fault = DropFault(drop_nth=5)
    workload = _workload(server_env, servers, fault)
    await workload.start()
    try:
        await _until(lambda: len(workload.ledger.acks) >= 20 and bool(fault.dropped))
        assert not await workload.settle(3)  # the skipped message never arrives
        history = await workload.read_history()
    finally:
        await workload.stop()
    result = check(workload.ledger, history=history)
    assert not result.ok
    assert {(f.where, f.message_id) for f in result.lost} == set(fault.dropped)
    assert all(f.where != HISTORY for f in result.lost)
    assert result.totals()["lost"] == 1
    assert result.totals()["duplicated"] == 0
