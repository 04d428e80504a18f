"""Realtime event publishing: the only module that sends events to connected devices.

Services call :func:`publish` after their transaction commits (``transaction.on_commit``),
from any thread or process (server, Celery worker, admin). With ``REDIS_URL`` the event
is routed through Redis to the processes holding the recipients' connections (one round
trip, whatever the number of recipients; on a Redis Cluster a few, bounded by the number
of masters: routes.py); on the embedded default it is handed straight to this process's
hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from chatproject.redis_connections import connections

from . import envelope, routes
from .hub import Hub, get_hub, local_hubs
from .routes import Routed

__all__ = [
    "Hub",
    "Outgoing",
    "apublish",
    "disconnect_devices",
    "get_hub",
    "publish",
    "publish_many",
]

_pending: set[asyncio.Task[None]] = set()


def _dispatch_locally(data: bytes, user_ids: Sequence[int]) -> list[int]:
    hubs = local_hubs()
    for hub in hubs:
        hub.loop.call_soon_threadsafe(_start_dispatch, hub, data)
    return [u for u in user_ids if not any(hub.holds(u) for hub in hubs)]


def _own_hubs() -> dict[bytes, Hub]:
    """This process's hubs that are subscribed: routing skips publishing to them and says
    which hold recipients, and the event is handed over in memory."""
    return {hub.process_id.encode(): hub for hub in local_hubs() if hub.routable}


def _delivered(data: bytes, routed: Routed, own: Mapping[bytes, Hub]) -> list[int]:
    """Hand the event to this process's hubs that hold recipients; return the offline users."""
    for process_id in routed.own_process_ids:
        hub = own.get(process_id)
        if hub is not None:
            hub.loop.call_soon_threadsafe(_start_dispatch, hub, data)
    return routed.offline_user_ids


# What routing asks of Redis, one pipeline at a time: ("scripts", script calls) or
# ("commands", commands); the pipeline's replies are sent back into the generator.
_Step = tuple[str, Sequence[Any]]


def _routing(
    batch: Sequence[tuple[Sequence[int], bytes]], own: Mapping[bytes, Hub]
) -> Generator[_Step, list[Any], list[Routed]]:
    """Route a batch of (recipients, envelope) through Redis (routes.py): one round trip on
    a single Redis, a few pipelines (each one round trip per master) on a cluster. Written
    once for the sync and the async caller, which run its steps (:func:`_route`,
    :func:`_aroute`)."""
    if not connections.cluster:
        calls = [routes.single_redis_call(user_ids, data, own) for user_ids, data in batch]
        replies = yield "scripts", calls
        return [routes.single_redis_routed(u, r) for (u, _), r in zip(batch, replies, strict=True)]
    fanout = routes.ClusterFanout(batch, own)
    fanout.resolved((yield "scripts", fanout.resolve_calls()))
    if publishes := fanout.publishes():
        fanout.published((yield "commands", [("SPUBLISH", *publish) for publish in publishes]))
    if dead := fanout.dead_routes():
        yield "commands", [("SREM", *route) for route in dead]
    return fanout.routed()


def _route(batch: Sequence[tuple[Sequence[int], bytes]], own: Mapping[bytes, Hub]) -> list[Routed]:
    steps = _routing(batch, own)
    replies: Any = None
    while True:
        try:
            kind, work = steps.send(replies)
        except StopIteration as done:
            routed: list[Routed] = done.value
            return routed
        if kind == "scripts":
            replies = connections.eval_many(work)
        else:
            pipe = connections.sync_client().pipeline(transaction=False)
            for command in work:
                pipe.execute_command(*command)
            replies = pipe.execute()


async def _aroute(
    batch: Sequence[tuple[Sequence[int], bytes]], own: Mapping[bytes, Hub]
) -> list[Routed]:
    steps = _routing(batch, own)
    replies: Any = None
    while True:
        try:
            kind, work = steps.send(replies)
        except StopIteration as done:
            routed: list[Routed] = done.value
            return routed
        if kind == "scripts":
            replies = await connections.aeval_many(work)
        else:
            pipe = connections.async_client().pipeline(transaction=False)
            for command in work:
                pipe.execute_command(*command)
            replies = await pipe.execute()


def _start_dispatch(hub: Hub, data: bytes) -> None:
    task = hub.loop.create_task(hub.dispatch(data))
    _pending.add(task)  # keep a reference until done, or the task may be collected mid-way
    task.add_done_callback(_pending.discard)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event for :func:`publish_many`; the fields are :func:`publish`'s arguments."""

    user_ids: Sequence[int]
    frame: Mapping[str, Any] | bytes
    seqs: Mapping[int, int] | None = None
    skip_device_id: int | None = None


def publish(
    user_ids: Sequence[int],
    frame: Mapping[str, Any] | bytes,
    *,
    seqs: Mapping[int, int] | None = None,
    skip_device_id: int | None = None,
) -> list[int]:
    """Send ``frame`` to every connected device of ``user_ids``; return those of
    ``user_ids`` with no live connection anywhere (they may need a push notification).

    With ``seqs`` (user id -> sequence number) each recipient's frame carries its ``seq``;
    such events are also in the recipients' sync queues, so a device that misses the live
    copy gets it on its next sync. Without ``seqs`` the event is ephemeral.
    """
    if not user_ids:
        return []
    return publish_many([Outgoing(user_ids, frame, seqs, skip_device_id)])[0]


def publish_many(events: Sequence[Outgoing]) -> list[list[int]]:
    """:func:`publish` for several events in one Redis round trip (a pipeline), in order.
    Returns each event's offline recipients."""
    encoded = [
        envelope.encode(e.user_ids, e.frame, seqs=e.seqs, skip_device_id=e.skip_device_id)
        for e in events
    ]
    if not settings.REDIS_URL:
        return [
            _dispatch_locally(data, e.user_ids) for e, data in zip(events, encoded, strict=True)
        ]
    own = _own_hubs()
    batch = [(e.user_ids, data) for e, data in zip(events, encoded, strict=True)]
    routed = _route(batch, own)
    return [_delivered(data, r, own) for (_, data), r in zip(batch, routed, strict=True)]


async def apublish(
    user_ids: Sequence[int],
    frame: Mapping[str, Any] | bytes,
    *,
    seqs: Mapping[int, int] | None = None,
    skip_device_id: int | None = None,
) -> list[int]:
    """:func:`publish` for async callers (the consumer), without a thread hop."""
    if not user_ids:
        return []
    data = envelope.encode(user_ids, frame, seqs=seqs, skip_device_id=skip_device_id)
    if settings.REDIS_URL:
        own = _own_hubs()
        (routed,) = await _aroute([(user_ids, data)], own)
        return _delivered(data, routed, own)
    return _dispatch_locally(data, user_ids)


def disconnect_devices(*, user_id: int, device_ids: Sequence[int]) -> None:
    """Close the live connections of revoked devices, wherever they are."""
    data = envelope.encode([user_id], b"{}", close_device_ids=device_ids)
    if settings.REDIS_URL:
        own = _own_hubs()
        (routed,) = _route([([user_id], data)], own)
        _delivered(data, routed, own)
    else:
        _dispatch_locally(data, [user_id])
