"""Realtime delivery on a Redis Cluster (``REDIS_CLUSTER``): a fan-out's round trips are
bounded by the masters, not the group; a process's sharded subscription follows its
channel to another master and survives the restart of its master. Skipped elsewhere.

"Another process" is played by a second subscriber on a process channel of its own (it
announces routes as a server process would), or by routing with no hubs of our own, as a
process that holds none of the recipients does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async as adb
from django.conf import settings

from accounts.models import User
from chat import realtime
from chat.realtime import envelope
from chat.realtime import hub as hub_module
from chat.realtime.routes import Routed, process_channel, user_route_key
from chat.services import messages
from chatproject.redis_connections import connections

from .conftest import direct
from .test_send_cost import RedisRoundTrips, masters
from .test_ws_messaging import UsersFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_CLUSTER, reason="needs REDIS_CLUSTER"),
]


async def _eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _route_from_elsewhere(user_ids: Sequence[int], frame: dict[str, Any]) -> Routed:
    """Route an event as a process without hubs of its own does (no in-memory shortcut)."""
    data = envelope.encode(user_ids, frame)
    (routed,) = realtime._route([(user_ids, data)], {})
    return routed


async def test_a_group_of_100_costs_round_trips_bounded_by_the_masters_not_the_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipients = list(range(1_000_001, 1_000_101))  # every bucket, so every master
    warm = list(range(2_000_001, 2_000_101))
    peer: Any = connections.subscriber_client(client_name="test-peer")  # a cluster client
    await peer.initialize()
    subscription = peer.pubsub()
    await subscription.ssubscribe(process_channel("peer"))
    pipe = peer.pipeline(transaction=False)
    for user_id in recipients:
        pipe.sadd(user_route_key(user_id), "peer")  # the peer holds all 100
    for user_id in [*recipients[::2], *warm]:
        pipe.sadd(user_route_key(user_id), "gone")  # a process that died holding 50 (+ warm)
    await pipe.execute()
    # Once through every step first: the clients' slot maps, command tables and scripts.
    assert (await adb(_route_from_elsewhere)(warm, {"type": "warm"})).offline_user_ids == warm
    trips = RedisRoundTrips(monkeypatch)

    async def cost(user_ids: Sequence[int]) -> tuple[Routed, int]:
        before = trips.count
        routed = await adb(_route_from_elsewhere)(user_ids, {"type": "test.event"})
        return routed, trips.count - before

    try:
        first, first_cost = await cost(recipients)
        again, again_cost = await cost(recipients)
        small, small_cost = await cost(recipients[:2])

        assert first.offline_user_ids == again.offline_user_ids == small.offline_user_ids == []
        # The peer got each event once, naming all its recipients.
        received: list[list[int]] = []
        while len(received) < 3:
            message = await subscription.get_sharded_message(
                ignore_subscribe_messages=True, timeout=5
            )
            if message is not None:
                received.append(envelope.decode(message["data"]).user_ids)
        assert received == [recipients, recipients, recipients[:2]]
        # Route sets per bucket, SPUBLISH per process, SREM of the dead routes (the first
        # time only): a pipeline each, a round trip per master at most.
        assert first_cost <= 3 * masters()
        assert again_cost <= 2 * masters()
        assert small_cost <= again_cost
        assert await peer.smembers(user_route_key(recipients[0])) == {b"peer"}
    finally:
        await subscription.aclose()
        await peer.aclose()


async def _hub_reachable(user_id: int) -> bool:
    routed = await adb(_route_from_elsewhere)([user_id], {"type": "test.probe"})
    return not routed.offline_user_ids


async def _receive_probe_then(device: Any, frame_type: str) -> dict[str, Any]:
    """The next frame of ``frame_type``, past the probes that found the hub again."""
    while True:
        frame: dict[str, Any] = await device.receive(timeout=10)
        if frame["type"] == frame_type:
            return frame
        assert frame["type"] == "test.probe", frame


def _master_of(key: str) -> redis.Redis:
    node = connections.sync_client().get_node_from_key(key)  # type: ignore[union-attr]
    return redis.Redis(host=node.host, port=node.port)


def _move_slot(slot: int, source: redis.Redis, target: redis.Redis) -> None:
    """Migrate ``slot`` (and its keys) from ``source`` to ``target``, as an operator does
    when resharding (redis-cli --cluster reshard)."""
    source_id, target_id = source.cluster("myid"), target.cluster("myid")
    target.cluster("setslot", slot, "importing", source_id)
    source.cluster("setslot", slot, "migrating", target_id)
    host, port = target.get_connection_kwargs()["host"], target.get_connection_kwargs()["port"]
    while keys := source.cluster("getkeysinslot", slot, 100):
        source.migrate(host, port, keys, 0, 5000)
    for node in _all_masters():
        node.cluster("setslot", slot, "node", target_id)
        node.close()


def _all_masters() -> list[redis.Redis]:
    return [
        redis.Redis(host=node.host, port=node.port)
        for node in connections.sync_client().get_primaries()  # type: ignore[union-attr]
    ]


async def _bob_connected(users: UsersFactory, ws_devices: Any) -> tuple[User, User, int, Any]:
    """Alice, Bob, their conversation and Bob's connected phone (on this loop's hub)."""
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    bob_phone = await ws_devices(bob, "phone")
    await bob_phone.connect()
    return alice, bob, conversation_id, bob_phone


async def test_the_hub_follows_its_channel_to_another_master_and_catches_up(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob, conversation_id, bob_phone = await _bob_connected(users, ws_devices)
    channel = process_channel(realtime.get_hub().process_id)
    source = await adb(_master_of)(channel)
    slot = int(source.cluster("keyslot", channel))
    port = source.get_connection_kwargs()["port"]
    target = next(m for m in await adb(_all_masters)() if m.get_connection_kwargs()["port"] != port)

    await adb(_move_slot)(slot, source, target)
    # Sent while the subscription moves (here it reaches Bob in memory): the resync after
    # the hub subscribes again neither repeats nor skips it (WsDevice checks each seq).
    sent = await adb(messages.send_message)(
        sender_id=alice.pk, conversation_id=conversation_id, client_msg_id="moving", text="hi"
    )

    await _eventually(lambda: _hub_reachable(bob.pk))
    event = await _receive_probe_then(bob_phone, "message.new")
    assert event["message"]["id"] == sent.message.id
    await adb(_route_from_elsewhere)([bob.pk], {"type": "test.after"})
    assert (await _receive_probe_then(bob_phone, "test.after"))["type"] == "test.after"
    await adb(_move_slot)(slot, target, source)  # as it was
    await _eventually(lambda: _hub_reachable(bob.pk))


async def test_the_hub_survives_the_restart_of_its_master(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob, conversation_id, bob_phone = await _bob_connected(users, ws_devices)
    master = await adb(_master_of)(process_channel(realtime.get_hub().process_id))

    try:
        await adb(master.execute_command)("DEBUG", "RESTART")
    except redis.ConnectionError:
        pass  # the server went away mid-answer: restarting
    except redis.ResponseError as refused:  # DEBUG not enabled (scripts/lib.sh enables it)
        pytest.skip(f"cannot restart a master: {refused}")

    async def cluster_ok() -> bool:
        try:
            return all(
                m.cluster("info")["cluster_state"] == "ok" for m in await adb(_all_masters)()
            )
        except redis.ConnectionError:
            return False

    await _eventually(cluster_ok, timeout=30)
    # The restarted master came back empty: no routes, no scripts. The hub re-announces
    # bob's route when it subscribes again; the send meanwhile reaches bob by resync.
    sent = await adb(messages.send_message)(
        sender_id=alice.pk, conversation_id=conversation_id, client_msg_id="restart", text="hi"
    )
    await _eventually(lambda: _hub_reachable(bob.pk), timeout=30)
    event = await _receive_probe_then(bob_phone, "message.new")
    assert event["message"]["id"] == sent.message.id


async def test_routes_a_master_lost_are_announced_again_while_the_subscription_stays(
    users: UsersFactory, ws_devices: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "ROUTE_REFRESH_SECONDS", 0.2)
    _alice, bob, _conversation_id, bob_phone = await _bob_connected(users, ws_devices)
    assert await _hub_reachable(bob.pk)

    # What a master that restarted empty (no replica) or lost its latest writes in a
    # failover does to the route sets it held; the hub's subscription, perhaps on
    # another master, never notices.
    await adb(connections.sync_client().delete)(user_route_key(bob.pk))

    await _eventually(lambda: _hub_reachable(bob.pk))
    await adb(_route_from_elsewhere)([bob.pk], {"type": "test.after"})
    assert (await _receive_probe_then(bob_phone, "test.after"))["type"] == "test.after"
