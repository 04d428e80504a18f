"""The process-local hub: which WebSocket connections this process holds, and delivery to them.

Fan-out is where a chat server spends its CPU, so delivery avoids Channels' per-consumer
layer pattern (0.3-0.6 ms per delivery): the process holds a registry of its connections,
receives each event once (one Redis subscription per process, or a direct in-process call
on the embedded default), and writes the already-serialized frame to each local recipient.

On a single Redis the process's channel is a plain ``SUBSCRIBE``; on a Redis Cluster a
sharded one (``SSUBSCRIBE``, on the master of the channel's slot: routes.py). Whenever
the subscription is lost, the hub subscribes again (every ``REDIS_RETRY_SECONDS``),
re-announces its routes (publishers drop routes whose publish reached nobody) and has
every socket resync (events published meanwhile are in the sync queues). Lost means: the
connection failed (a restart, a failover, a network cut) or, on a cluster, the channel's
slot moved to another master (the old one says ``sunsubscribe``). On a cluster the routes
are also announced again every ``ROUTE_REFRESH_SECONDS``: route sets live on every
master, and one of them may lose its data while this subscription, on another, stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings

from chatproject.coalesce import AsyncCoalescer
from chatproject.per_loop import PerLoopRegistry
from chatproject.redis_connections import connections

from . import envelope as envelopes
from .routes import process_channel, user_route_key

if TYPE_CHECKING:
    from chatproject.redis_connections import AsyncRedis

logger = logging.getLogger(__name__)

# Re-subscribe and re-announce routes after a Redis hiccup at this pace.
REDIS_RETRY_SECONDS = 1.0
# On a cluster, routes are announced again this often (see Hub._reannounce_routes).
ROUTE_REFRESH_SECONDS = 30.0
# A sharded subscription is read with this timeout: the reader notices a subscription
# that moved (or a dead node, through the health check) even when no event comes.
SHARDED_POLL_SECONDS = 1.0


class LiveConnection(Protocol):
    user_id: int
    device_id: int

    async def deliver(self, seq: int | None, frame: bytes) -> None: ...

    async def resync(self) -> None: ...

    async def close_revoked(self) -> None: ...

    async def drain(self) -> None: ...


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._by_user: dict[int, set[LiveConnection]] = {}
        # Open connections, kept as a number so other threads (the registry's announcer)
        # read it without walking the dict.
        self.connection_count = 0
        self._empty = asyncio.Event()
        self._empty.set()
        self._started = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._redis: AsyncRedis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._resyncs: set[asyncio.Task[None]] = set()
        # Route changes of sockets that come and go together: one pipeline per batch, in
        # the order they happened (a user's add before its remove).
        self._route_changes: AsyncCoalescer[tuple[int, bool], None] = AsyncCoalescer(
            self._change_routes, max_batch=1_000
        )

    # --- lifecycle -------------------------------------------------------------------------
    async def ensure_started(self) -> None:
        if self._started.is_set():
            return
        async with self._start_lock:
            if self._started.is_set():
                return
            if settings.REDIS_URL:
                ready = asyncio.Event()
                # Keep the reference: a garbage-collected reader task silently stops delivery.
                self._reader = asyncio.create_task(self._read_redis(ready), name="chat-hub-reader")
                await ready.wait()
            self._started.set()

    async def _read_redis(self, ready: asyncio.Event) -> None:
        channel = process_channel(self.process_id)
        while True:
            # A blocking pool, so route updates of a burst of connects wait for a connection
            # rather than fail; the name is for CLIENT LIST / CLIENT KILL.
            client = connections.subscriber_client(client_name=f"chat-hub:{self.process_id}")
            self._redis = client
            try:
                events = await _subscribe(client, channel)
                # Routes announced before a reconnect may have been dropped as dead meanwhile.
                await self._announce_all_routes(client)
                if ready.is_set():
                    # Events published while the subscription was down never reached this
                    # process; they are in the sync queues, so every socket catches up.
                    self._resync_all()
                ready.set()
                refresher = asyncio.create_task(self._reannounce_routes(client))
                try:
                    async for data in events:
                        await self.dispatch(data)
                finally:
                    refresher.cancel()
                logger.warning("hub: Redis subscription moved; subscribing again")
            except asyncio.CancelledError:
                await client.aclose()
                raise
            except Exception:
                logger.exception("hub: Redis subscription failed; reconnecting")
            await client.aclose()
            await asyncio.sleep(REDIS_RETRY_SECONDS)

    async def _announce_all_routes(self, client: AsyncRedis) -> None:
        users = list(self._by_user)
        if not users:
            return
        pipe = client.pipeline(transaction=False)
        for user_id in users:
            pipe.sadd(user_route_key(user_id), self.process_id)
        await pipe.execute()
        # A user whose last connection left meanwhile may have had its route removed
        # before the pipeline added it back: remove it again (a stale route would count
        # the user as online, and cost them their push notifications).
        if gone := [user_id for user_id in users if user_id not in self._by_user]:
            pipe = client.pipeline(transaction=False)
            for user_id in gone:
                pipe.srem(user_route_key(user_id), self.process_id)
            await pipe.execute()

    async def _reannounce_routes(self, client: AsyncRedis) -> None:
        """On a cluster, announce the routes again every ``ROUTE_REFRESH_SECONDS``: a
        master that restarted empty (or a failover that lost the latest writes) loses the
        route sets it held without breaking this process's subscription, which may be on
        another master. On a single Redis, losing the data breaks the subscription too."""
        if not connections.cluster:
            return
        while True:
            await asyncio.sleep(ROUTE_REFRESH_SECONDS)
            try:
                await self._announce_all_routes(client)
            except Exception:  # the next round, or the reconnect, tries again
                logger.warning("hub: could not re-announce routes", exc_info=True)

    def _resync_all(self) -> None:
        for peers in list(self._by_user.values()):
            for connection in list(peers):
                task = asyncio.create_task(connection.resync())
                self._resyncs.add(task)  # a reference until done: unreferenced tasks may vanish
                task.add_done_callback(self._resyncs.discard)

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._redis is not None:
            redis_client = self._redis
            self._redis = None
            pipe = redis_client.pipeline(transaction=False)
            for user_id in self._by_user:
                pipe.srem(user_route_key(user_id), self.process_id)
            try:
                await pipe.execute()
            finally:
                await redis_client.aclose()
        self._started.clear()

    # --- registry --------------------------------------------------------------------------
    async def register(self, connection: LiveConnection) -> None:
        await self.ensure_started()
        peers = self._by_user.setdefault(connection.user_id, set())
        first = not peers
        if connection not in peers:
            peers.add(connection)
            self.connection_count += 1
            self._empty.clear()
        if first and self._redis is not None:
            await self._route_changes((connection.user_id, True))

    async def unregister(self, connection: LiveConnection) -> None:
        peers = self._by_user.get(connection.user_id)
        if peers is None or connection not in peers:
            return
        peers.discard(connection)
        self.connection_count -= 1
        if not self.connection_count:
            self._empty.set()
        if not peers:
            del self._by_user[connection.user_id]
            if self._redis is not None:
                try:
                    await self._route_changes((connection.user_id, False))
                # A stale route is harmless: the next publish that misses drops it.
                except Exception:
                    logger.warning(
                        "hub: could not remove route of user %s", connection.user_id, exc_info=True
                    )

    async def _change_routes(self, changes: list[tuple[int, bool]]) -> list[None]:
        """Add (True) or remove (False) this process from users' routes, in order."""
        client = self._redis
        if client is not None:  # else the routes are announced once subscribed again
            pipe = client.pipeline(transaction=False)
            for user_id, add in changes:
                key = user_route_key(user_id)
                if add:
                    pipe.sadd(key, self.process_id)
                else:
                    pipe.srem(key, self.process_id)
            await pipe.execute()
        return [None] * len(changes)

    def open_connections(self) -> list[LiveConnection]:
        return [connection for peers in self._by_user.values() for connection in peers]

    async def drain(self) -> None:
        """Ask every connection to go elsewhere and return once all are gone (each leaves
        when its client answers the close, or when the server's shutdown cuts it)."""
        await asyncio.gather(
            *(connection.drain() for connection in self.open_connections()),
            return_exceptions=True,
        )
        await self._empty.wait()

    @property
    def routable(self) -> bool:
        """Subscribed to its Redis channel: its routes are announced, and publishes from
        this process may hand it events in memory."""
        return self._redis is not None and self._started.is_set()

    def holds(self, user_id: int) -> bool:
        """Whether this process has a live connection of the user (safe from any thread)."""
        return user_id in self._by_user

    # --- delivery --------------------------------------------------------------------------
    async def dispatch(self, data: bytes) -> None:
        event = envelopes.decode(data)
        by_user = self._by_user
        for index, user_id in enumerate(event.user_ids):
            peers = by_user.get(user_id)
            if not peers:
                continue
            if event.close_device_ids is not None:
                for connection in list(peers):
                    if connection.device_id in event.close_device_ids:
                        await connection.close_revoked()
                continue
            seq, frame = event.frame_for(index)
            for connection in list(peers):
                if connection.device_id != event.skip_device_id:
                    try:
                        await connection.deliver(seq, frame)
                    except Exception:  # one broken socket must not cost the others this event
                        logger.exception("hub: delivery to device %s failed", connection.device_id)


async def _subscribe(client: AsyncRedis, channel: str) -> AsyncIterator[bytes]:
    """Subscribe ``client`` to ``channel``; the envelopes published to it, until the
    subscription is lost: the iterator ends (a cluster slot moved) or raises (the
    connection failed)."""
    import redis.asyncio as aioredis

    if isinstance(client, aioredis.Redis):
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)
        return _messages(pubsub)
    await client.initialize()  # the slot map, to find the channel's master
    sharded = client.pubsub()
    await sharded.ssubscribe(channel)
    return _sharded_messages(sharded)


async def _messages(pubsub: Any) -> AsyncIterator[bytes]:
    async for message in pubsub.listen():
        data = message.get("data")
        if isinstance(data, bytes):
            yield data


async def _sharded_messages(pubsub: Any) -> AsyncIterator[bytes]:
    while pubsub.node_pubsub_mapping:  # emptied when the slot's master dropped us
        message = await pubsub.get_sharded_message(timeout=SHARDED_POLL_SECONDS)
        if message is None:
            continue
        if message["type"] == "sunsubscribe":  # the slot moved to another master
            return
        if message["type"] == "smessage" and isinstance(message["data"], bytes):
            yield message["data"]


_hubs: PerLoopRegistry[Hub] = PerLoopRegistry(Hub)


def get_hub() -> Hub:
    """The hub of the running event loop (one per server process; tests get one per loop)."""
    return _hubs.get()


def local_hubs() -> list[Hub]:
    return _hubs.live()
