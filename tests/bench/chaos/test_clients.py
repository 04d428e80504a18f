"""The fault-injection workload against live server processes (production config: two
``serve`` processes sharing PostgreSQL and Redis; embedded: one), without server faults.

A clean run, with a burst of reconnects of every device in the middle, is judged clean by
the checker; the same run with one client that skips a ``message.new`` (a deliberate bug)
is judged lossy: the checker is proven able to fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import pytest

from bench.chaos import report
from bench.chaos.checker import HISTORY, CheckResult, FaultWindow, check, check_presence
from bench.chaos.clients import (
    ClientSettings,
    DeviceAccount,
    DeviceClient,
    DropFault,
    PendingSend,
    ServerPicker,
)
from bench.chaos.ledger import ChaosLedger
from bench.chaos.workload import Workload, history_from_database
from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e


def test_the_picker_skips_servers_that_failed_until_their_down_time_passes() -> None:
    picker = ServerPicker(["ws://a", "ws://b", "ws://c"])
    assert [picker.pick() for _ in range(4)] == ["ws://a", "ws://b", "ws://c", "ws://a"]
    picker.mark_down("ws://b", 60)
    assert [picker.pick() for _ in range(3)] == ["ws://c", "ws://a", "ws://c"]
    picker.mark_down("ws://a", 60)
    picker.mark_down("ws://c", 30)
    assert picker.pick() == "ws://c"  # all down: the one back soonest
    picker.mark_down("ws://b", 0)
    assert picker.pick() == "ws://b"


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    settings = ClientSettings(backoff_initial=0.5, backoff_cap=4.0)
    account = DeviceAccount("u1d0", 1, "token", (1,))
    client = DeviceClient(account, ["ws://a"], ChaosLedger(), settings=settings, seed=3)
    for failures, step in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0)]:
        delays = [client._backoff(failures) for _ in range(50)]
        assert all(step / 2 <= delay <= step for delay in delays)
        assert len(set(delays)) > 1  # jittered, so devices do not reconnect in lockstep


def test_sends_answered_server_error_are_retried_later_each_time() -> None:
    settings = ClientSettings(backoff_initial=0.5, backoff_cap=4.0, send_timeout=8.0)
    account = DeviceAccount("u1d0", 1, "token", (1,))
    client = DeviceClient(account, ["ws://a"], ChaosLedger(), settings=settings, seed=3)
    client.outbox["m1"] = PendingSend(conversation_id=1, client_msg_id="m1", text="hi")
    waits = []
    for _ in range(5):
        client._on_error({"type": "error", "code": "server_error", "ref": "m1"})
        due = client.outbox["m1"].last_sent_at + settings.send_timeout
        waits.append(due - time.monotonic())
    # Each retry waits about twice as long as the one before, up to the cap; still pending.
    for wait, step in zip(waits, [0.5, 1.0, 2.0, 4.0, 4.0], strict=True):
        assert step / 2 - 0.05 <= wait <= step, waits
    assert "m1" in client.outbox


def _workload(
    server_env: dict[str, str],
    servers: Callable[[int], list[ServerProcess]],
    fault: DropFault | None = None,
) -> tuple[Workload, list[ServerProcess]]:
    # Sign-ups and log-ins of the workload come from one address.
    server_env["THROTTLE_SIGNUP"] = server_env["THROTTLE_LOGIN"] = "1000000/min"
    started = servers(2 if os.environ.get("REDIS_URL") else 1)
    workload = Workload(
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
    return workload, started


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
    workload, _ = _workload(server_env, servers)
    await workload.start()
    try:
        await _until(lambda: len(workload.ledger.acks) >= 30)
        await workload.reconnect_all()
        # Written to a socket that is already cut: only the retry after reconnecting can
        # deliver it, with the same client_msg_id.
        first = workload.clients[0]
        retried = first.send(first.account.conversation_ids[0])
        await _until(lambda: len(workload.ledger.acks) >= 60 and workload.all_live())
        assert await workload.settle(20), _unsettled(workload)
        history = await workload.read_history()
        offline = await workload.take_offline(1)
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
    assert [user for user, status in truth.items() if status == "offline"] == offline
    attempts = [a for a in workload.ledger.attempts if a.client_msg_id == retried]
    assert [a.retry for a in attempts] == [False, True]
    assert [a.client_msg_id for a in workload.ledger.acks].count(retried) == 1
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
    workload, _ = _workload(server_env, servers, fault)
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


async def _passing_verdict(workload: Workload, windows: list[FaultWindow]) -> CheckResult:
    """Settle, read the history, stop the workload: the checker's verdict must be a pass."""
    assert await workload.settle(20), _unsettled(workload)
    history = await workload.read_history()
    await workload.stop()
    result = check(workload.ledger, history=history, windows=windows)
    assert result.ok, report.markdown(result, plot=None)
    return result


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs two server processes")
async def test_devices_move_to_the_surviving_server_when_one_is_killed(
    server_env: dict[str, str], servers: Callable[[int], list[ServerProcess]]
) -> None:
    workload, started = _workload(server_env, servers)
    await workload.start()
    try:
        await _until(lambda: len(workload.ledger.acks) >= 20)
        killed_at = time.monotonic()
        started[0].kill()
        window = FaultWindow("kill -9 server 0", killed_at, time.monotonic())
        await _until(lambda: len(workload.ledger.acks) >= 60 and workload.all_live())
        result = await _passing_verdict(workload, [window])
    finally:
        await workload.stop()
    kill = result.windows[1]
    assert kill.acknowledged > 0
    assert kill.live_again_seconds is not None
    assert kill.live_again_seconds < 10


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs two server processes")
async def test_devices_leave_a_paused_server_when_its_pongs_stop(
    server_env: dict[str, str], servers: Callable[[int], list[ServerProcess]]
) -> None:
    workload, started = _workload(server_env, servers)
    await workload.start()
    paused = started[0].process
    assert paused is not None
    try:
        await _until(lambda: len(workload.ledger.acks) >= 20)
        paused_at = time.monotonic()
        paused.send_signal(signal.SIGSTOP)
        try:
            # Only the missing pongs tell the clients: the sockets stay open.
            await _until(lambda: _all_moved_off(workload, started[0].ws_url), 30)
        finally:
            paused.send_signal(signal.SIGCONT)
        window = FaultWindow("SIGSTOP server 0", paused_at, time.monotonic())
        result = await _passing_verdict(workload, [window])
    finally:
        await workload.stop()
    assert result.windows[1].acknowledged > 0
    assert result.windows[1].errors["pong_timeout"] > 0


def _all_moved_off(workload: Workload, url: str) -> bool:
    return workload.all_live() and all(client.url != url for client in workload.clients)
