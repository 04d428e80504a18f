"""Realtime event publishing: the only module that sends events to connected devices.

Services call :func:`publish` after their transaction commits (``transaction.on_commit``),
from any thread or process (server, Celery worker, admin). With ``REDIS_URL`` the event
is routed through Redis to the processes holding the recipients' connections (one round
trip, whatever the number of recipients); on the embedded default it is handed straight
to this process's hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.exceptions import NoScriptError

from chatproject.redis_connections import connections

from . import envelope
from .hub import Hub, get_hub, local_hubs
from .routes import ROUTE_AND_PUBLISH_LUA, user_route_key

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


def _sync_script() -> Any:
    return connections.sync_script(ROUTE_AND_PUBLISH_LUA)


def _async_script() -> Any:
    return connections.async_script(ROUTE_AND_PUBLISH_LUA)


def _dispatch_locally(data: bytes, user_ids: Sequence[int]) -> list[int]:
    hubs = local_hubs()
    for hub in hubs:
        hub.loop.call_soon_threadsafe(_start_dispatch, hub, data)
    return [u for u in user_ids if not any(hub.holds(u) for hub in hubs)]


def _own_hubs() -> dict[bytes, Hub]:
    """This process's hubs that are subscribed: the routing script skips publishing to them
    and says which hold recipients, and the event is handed over in memory."""
    return {hub.process_id.encode(): hub for hub in local_hubs() if hub.routable}


def _routed(
    user_ids: Sequence[int], data: bytes, reply: Sequence[Any], own: Mapping[bytes, Hub]
) -> list[int]:
    """Hand the event to this process's hubs the script named; return the offline users."""
    offline_indexes, own_targets = reply
    for process_id in own_targets:
        hub = own.get(process_id)
        if hub is not None:
            hub.loop.call_soon_threadsafe(_start_dispatch, hub, data)
    return [user_ids[i - 1] for i in offline_indexes]  # Lua's indexes are 1-based


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
    script = _sync_script()
    client = script.registered_client
    own = _own_hubs()
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        for event, data in zip(events, encoded, strict=True):
            keys = [user_route_key(u) for u in event.user_ids]
            pipe.evalsha(script.sha, len(keys), *keys, data, *own)
        try:
            replies = pipe.execute()
            break
        except NoScriptError:
            # Redis restarted and lost its script cache; no command of the pipeline ran.
            if attempt == 2:
                raise
            client.script_load(ROUTE_AND_PUBLISH_LUA)
    return [
        _routed(e.user_ids, data, reply, own)
        for e, data, reply in zip(events, encoded, replies, strict=True)
    ]


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
        reply = await _async_script()(keys=[user_route_key(u) for u in user_ids], args=[data, *own])
        return _routed(user_ids, data, reply, own)
    return _dispatch_locally(data, user_ids)


def disconnect_devices(*, user_id: int, device_ids: Sequence[int]) -> None:
    """Close the live connections of revoked devices, wherever they are."""
    data = envelope.encode([user_id], b"{}", close_device_ids=device_ids)
    if settings.REDIS_URL:
        own = _own_hubs()
        reply = _sync_script()(keys=[user_route_key(user_id)], args=[data, *own])
        _routed([user_id], data, reply, own)
    else:
        _dispatch_locally(data, [user_id])
