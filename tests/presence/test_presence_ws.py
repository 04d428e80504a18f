"""Presence over the WebSocket, through the real ASGI application: transitions reach the
users who watch, at once, and only transitions do."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from accounts import services as account_services
from accounts.models import Device
from chat.services import conversations
from presence import services
from presence.backends import Lease, get_backend
from presence.models import Presence
from presence.session import get_tracker

from .conftest import UsersFactory, add_contact, next_presence, presence_while_pinging, watching

pytestmark = pytest.mark.django_db(transaction=True)


async def test_contact_sees_online_once_and_offline_with_last_active_when_all_devices_leave(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    await add_contact(bob, alice)  # bob's contact list shows alice: bob watches her
    b1 = await ws_devices(bob, "b1")
    assert await watching(b1) == [
        {"user_id": alice.pk, "status": "offline", "last_active_at": None}
    ]

    a1, a2 = await ws_devices(alice, "a1"), await ws_devices(alice, "a2")
    started = time.monotonic()
    await a1.connect()
    online = await next_presence(b1, timeout=1)
    assert time.monotonic() - started < 1
    assert (online["user_id"], online["status"]) == (alice.pk, "online")

    await a2.connect()  # a second device changes nothing for bob
    assert await b1.nothing_more(0.5)
    await a1.disconnect()  # neither does the first one leaving while the second stays
    assert await b1.nothing_more(0.5)

    await a2.disconnect()
    offline = await next_presence(b1, timeout=1)
    assert (offline["user_id"], offline["status"]) == (alice.pk, "offline")
    assert offline["last_active_at"] >= online["last_active_at"]
    stored = await adb(Presence.objects.get)(user_id=alice.pk)
    assert stored.last_active_at is not None
    assert offline["last_active_at"].startswith(stored.last_active_at.isoformat()[:19])
    # Alice sees nothing about herself, and bob's own presence went to no one.
    assert await b1.nothing_more()


async def test_direct_partners_watch_each_other_group_members_do_not(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob, carol = await adb(users)(3)
    await adb(conversations.get_or_create_direct)(alice, bob.pk)
    await adb(conversations.create_group)(alice, name="team", member_ids_=[bob.pk, carol.pk])
    b1, c1 = await ws_devices(bob, "b1"), await ws_devices(carol, "c1")
    assert [u["user_id"] for u in await watching(b1)] == [alice.pk]
    assert await watching(c1) == []

    a1 = await ws_devices(alice, "a1")
    await a1.connect()
    assert (await next_presence(b1))["status"] == "online"
    assert await c1.nothing_more(0.5)


async def test_snapshot_shows_who_is_online_now_and_devices_that_do_not_watch_get_nothing(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob, carol = await adb(users)(3)
    await add_contact(bob, alice)
    await add_contact(bob, carol)
    a1 = await ws_devices(alice, "a1")
    await a1.connect()

    b_quiet, b1 = await ws_devices(bob, "quiet"), await ws_devices(bob, "b1")
    await b_quiet.connect()  # never sends "watch": a client that does not show presence
    snapshot = {u["user_id"]: u for u in await watching(b1)}
    assert snapshot[alice.pk]["status"] == "online"
    assert snapshot[alice.pk]["last_active_at"] is not None
    assert snapshot[carol.pk] == {"user_id": carol.pk, "status": "offline", "last_active_at": None}

    c1 = await ws_devices(carol, "c1")
    await c1.connect()
    assert (await next_presence(b1))["user_id"] == carol.pk
    assert await b_quiet.nothing_more(0.5)


async def test_logout_and_revocation_take_the_device_offline_at_once(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    await add_contact(bob, alice)
    b1 = await ws_devices(bob, "b1")
    await watching(b1)
    a1 = await ws_devices(alice, "a1")
    await a1.connect()
    assert (await next_presence(b1))["status"] == "online"

    device = await adb(Device.objects.get)(pk=a1.device_id)
    started = time.monotonic()
    await adb(account_services.revoke_device)(device)
    # The revoked socket is closed by the server; its client never acknowledges the close.
    offline = await next_presence(b1, timeout=1)
    assert offline["status"] == "offline"
    assert time.monotonic() - started < 1
    assert (await a1.receive_type("error"))["code"] == "revoked"


async def test_a_silent_socket_is_closed_and_its_user_goes_offline_within_the_timeout(
    users: UsersFactory, ws_devices: Any, settings: Any
) -> None:
    settings.PRESENCE_TIMEOUT = 1.0
    settings.PRESENCE_TICK = 0.2
    alice, bob = await adb(users)(2)
    await add_contact(bob, alice)
    b1 = await ws_devices(bob, "b1")
    await watching(b1)
    a1 = await ws_devices(alice, "a1")
    await a1.connect()
    assert (await next_presence(b1))["status"] == "online"

    # Bob heartbeats, alice's transport is silent (as after a dropped network).
    started = time.monotonic()
    offline = await presence_while_pinging(b1, timeout=3)
    elapsed = time.monotonic() - started
    assert offline["status"] == "offline"
    assert 0.8 < elapsed < 1.0 + 0.2 + 0.5  # timeout + one tick (+ scheduling slack)
    assert (await a1.receive_type("error"))["code"] == "heartbeat_timeout"
    assert a1.communicator is not None
    assert (await a1.communicator.receive_output())["code"] == 4010
    a1.communicator = None


async def test_pings_keep_a_user_online_past_the_timeout(
    users: UsersFactory, ws_devices: Any, settings: Any
) -> None:
    settings.PRESENCE_TIMEOUT = 0.6
    settings.PRESENCE_TICK = 0.1
    alice, bob = await adb(users)(2)
    await add_contact(bob, alice)
    b1, a1 = await ws_devices(bob, "b1"), await ws_devices(alice, "a1")
    await watching(b1)
    await a1.connect()
    assert (await next_presence(b1))["status"] == "online"
    for _ in range(8):  # 2 s, more than three timeouts
        for device in (a1, b1):
            await device.send({"type": "ping"})
            assert (await device.receive())["type"] == "pong"
        await asyncio.sleep(0.25)
    assert await b1.nothing_more(0.1)


async def test_leases_of_a_dead_process_expire_and_the_sweep_takes_them_offline(
    users: UsersFactory, ws_devices: Any, settings: Any
) -> None:
    settings.PRESENCE_TIMEOUT = 1.0
    settings.PRESENCE_TICK = 0.2
    alice, bob = await adb(users)(2)
    await add_contact(bob, alice)
    b1 = await ws_devices(bob, "b1")
    await watching(b1)
    # A connection held by a process that then died: its lease is never refreshed again.
    last_frame = time.time()
    await adb(services.connection_opened)(user_id=alice.pk, member="9/deadbeef1")
    assert (await next_presence(b1))["status"] == "online"

    offline = await presence_while_pinging(b1, timeout=1.0 + 0.2 + 1)
    assert offline["status"] == "offline"
    # Last active is when the lease was last refreshed, not when it was swept.
    stored = await adb(Presence.objects.get)(user_id=alice.pk)
    assert stored.last_active_at is not None
    assert abs(stored.last_active_at.timestamp() - last_frame) < 0.5
    assert not await adb(get_backend().online)([alice.pk], now=time.time())


async def test_a_lease_swept_while_its_process_stalled_comes_back_at_the_next_tick(
    users: UsersFactory, ws_devices: Any, settings: Any
) -> None:
    alice, bob = await adb(users)(2)
    await add_contact(bob, alice)
    b1, a1 = await ws_devices(bob, "b1"), await ws_devices(alice, "a1")
    await watching(b1)
    await a1.connect()
    assert (await next_presence(b1))["status"] == "online"
    (session,) = [s for s in get_tracker().sessions if s.user_id == alice.pk]
    # As if alice's process had stalled past the timeout and another one swept her lease.
    assert await adb(get_backend().disconnect)(alice.pk, session.member, now=time.time())
    await get_tracker().tick()
    assert (await next_presence(b1))["status"] == "online"
    assert await adb(get_backend().online)([alice.pk], now=time.time()) == {alice.pk}
    missing = await adb(get_backend().refresh)([Lease(alice.pk, session.member, time.time() + 5)])
    assert missing == []


async def test_hidden_presence_shows_no_status_and_publishes_nothing(
    users: UsersFactory, ws_devices: Any, api: Any
) -> None:
    alice, bob = await adb(users)(2)
    await add_contact(bob, alice)
    await adb(services.set_hidden)(alice.pk, hidden=True)
    b1 = await ws_devices(bob, "b1")
    await watching(b1)
    a1 = await ws_devices(alice, "a1")
    await a1.connect()
    assert await b1.nothing_more(0.5)
    await a1.disconnect()
    assert await b1.nothing_more(0.5)
    (seen,) = await adb(services.presence_of)(bob.pk, [alice.pk])
    assert seen == {"user_id": alice.pk, "status": None, "last_active_at": None}

    # Showing it again while online tells the watchers at once.
    a1 = await ws_devices(alice, "a1b")
    await a1.connect()
    assert await b1.nothing_more(0.3)
    await adb(services.set_hidden)(alice.pk, hidden=False)
    assert (await next_presence(b1))["status"] == "online"
    await adb(services.set_hidden)(alice.pk, hidden=True)
    hidden = await next_presence(b1)
    assert (hidden["status"], hidden["last_active_at"]) == (None, None)


async def test_heartbeat_frames_cannot_name_another_user_or_device(
    users: UsersFactory, ws_devices: Any
) -> None:
    (alice,) = await adb(users)(1)
    a1 = await ws_devices(alice, "a1")
    await a1.connect()
    for extra in ({"user_id": 2}, {"device_id": 7}):
        await a1.send({"type": "ping", "ref": "p", **extra})
        error = await a1.receive()
        assert (error["type"], error["code"], error["ref"]) == ("error", "invalid_frame", "p")
    await a1.send({"type": "watch", "user_ids": [1, 2]})
    assert (await a1.receive())["code"] == "invalid_frame"


async def test_repeated_watch_requests_are_refused_for_five_seconds(
    users: UsersFactory, ws_devices: Any
) -> None:
    (alice,) = await adb(users)(1)
    a1 = await ws_devices(alice, "a1")
    assert await watching(a1) == []
    await a1.send({"type": "watch", "ref": "again"})
    error = await a1.receive()
    assert (error["code"], error["ref"]) == ("rate_limited", "again")
    assert 4 < error["retry_after"] <= 5
