"""Heartbeats cost nothing but memory: 1,000 users heartbeating write nothing to the
database and publish nothing; only the online and offline transitions are published. The
presence tick reads once for all of them (whether their devices are still usable)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from accounts.models import Contact, Device, User
from accounts.tokens import hash_token, new_token
from chat import realtime
from presence.session import Tracker, get_tracker

from .conftest import Recorder, WsDevice

pytestmark = pytest.mark.django_db(transaction=True)

USERS = 1_000


def _users_in_a_ring(count: int) -> list[tuple[User, str, int]]:
    """``count`` users with one device each; user i+1 has user i as a contact, so every
    user has exactly one watcher."""
    stamp = time.monotonic_ns()
    users = User.objects.bulk_create(
        [User(username=f"hb{stamp}-{i}", password="!") for i in range(count)]
    )
    tokens = [new_token() for _ in users]
    devices = Device.objects.bulk_create(
        [
            Device(user=u, name="phone", token_hash=hash_token(t), token_prefix=t[:10])
            for u, t in zip(users, tokens, strict=True)
        ]
    )
    Contact.objects.bulk_create(
        [Contact(owner=users[(i + 1) % count], contact=users[i]) for i in range(count)]
    )
    return [(u, t, d.pk) for u, t, d in zip(users, tokens, devices, strict=True)]


async def _presence_events(recorder: Recorder, count: int) -> list[dict[str, Any]]:
    """The presence events published, once ``count`` arrived (a connection goes online just
    after its hello, so the last ones may still be on their way)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = [frame for _, frame in recorder.published if frame["type"] == "presence"]
        if len(events) >= count:
            await asyncio.sleep(0.2)  # and no more than that
            return [frame for _, frame in recorder.published if frame["type"] == "presence"]
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(events)} of {count} presence events were published")


@pytest.mark.timeout(300)
async def test_1000_users_heartbeating_write_nothing_and_publish_only_transitions(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ticks are counted, the process's own ticker's included: on a slow machine its
    # every-10-seconds tick falls inside the measured window too.
    ticks = 0
    tick = Tracker.tick

    async def counted_tick(self: Tracker) -> None:
        nonlocal ticks
        ticks += 1
        await tick(self)

    monkeypatch.setattr(Tracker, "tick", counted_tick)
    created = await adb(_users_in_a_ring)(USERS)
    devices = [WsDevice(user, token, device_id) for user, token, device_id in created]
    recorder.clear()
    try:
        for device in devices:
            await device.connect(sync=False)
        online = await _presence_events(recorder, USERS)
        assert len(online) == USERS
        assert {f["status"] for f in online} == {"online"}

        recorder.clear()
        ticks = 0
        for _ in range(3):
            for device in devices:
                await device.send({"type": "ping"})
            for device in devices:
                assert (await device.receive())["type"] == "pong"
            # The once-per-tick lease refresh of all 1,000 connections is no exception.
            await get_tracker().tick()
        # Per tick, one read for all 1,000 connections: are their devices still usable.
        assert ticks >= 3
        assert len(recorder.statements) == ticks
        assert all(
            sql.startswith("SELECT") and " accounts_device " in sql for sql in recorder.statements
        )
        assert recorder.writes() == []
        assert recorder.published == []

        recorder.clear()
        for device in devices:
            await device.disconnect()
        offline = await _presence_events(recorder, USERS)
        assert len(offline) == USERS
        assert {f["status"] for f in offline} == {"offline"}
        # One write per offline transition (last_active_at), none per heartbeat.
        assert all("presence_presence" in sql for sql in recorder.writes())
        assert len(recorder.writes()) == USERS
    finally:
        for device in devices:
            await device.disconnect()
        await realtime.get_hub().stop()
