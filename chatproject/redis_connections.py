"""Every Redis client of a process, configured once (the style of Django's ``CACHES``
``ConnectionHandler``): the URL and timeouts come from settings, the clients are made here.

* :meth:`RedisConnections.sync_client`: one per process, over a thread-safe blocking pool
  (threads wait for a connection under a burst instead of failing). redis-py's pools check
  the pid, so a forked child never reuses its parent's sockets.
* :meth:`RedisConnections.async_client`: one per running event loop (redis.asyncio
  connections belong to the loop that opened them), held in the one per-loop registry; the
  pools of closed loops are dropped and their sockets shut down.
* :meth:`RedisConnections.subscriber_client`: a new client for a pub/sub reader. Its reads
  block until a message arrives, so it has no socket timeout (as channels-redis notes);
  a health check detects a dead peer instead.
* :meth:`RedisConnections.new_sync_client`: a private client with the configured timeouts,
  for an owner that closes it itself (the id worker lease).
* :meth:`RedisConnections.eval_many` / :meth:`RedisConnections.aeval_many`: several
  script calls in one pipeline, with the scripts a (restarted) server lost loaded again.

With ``REDIS_CLUSTER`` every one of these is a cluster client
(``redis.cluster.RedisCluster``, ``redis.asyncio.cluster.RedisCluster``) seeded from
``REDIS_URL``: it learns the slot map from the seed, follows MOVED and ASK redirections
itself, and retries a command that failed on a connection error, a timeout or a cluster
that is down (failover) after refreshing the map (``CLUSTER_RETRIES`` in
``redis_settings``). A pipeline on a cluster client is one write per node it touches, in
parallel, so a pipeline's round trips are bounded by the number of masters. A script's
keys must all be in one slot (hash tags: docs/architecture.md "Redis keys"); callers
that touch keys of several slots make one script call per slot in one pipeline.

Settings: ``REDIS_URL``, ``REDIS_CLUSTER``; ``REDIS_SOCKET_CONNECT_TIMEOUT`` and
``REDIS_SOCKET_TIMEOUT`` (seconds, default 5 each), read through
``chatproject/redis_settings.py``, which also derives the Django cache and the channel
layer from them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import redis_settings
from .per_loop import PerLoopRegistry
from .redis_settings import (
    ASYNC_CLUSTER_MAX_CONNECTIONS,
    ASYNC_MAX_CONNECTIONS,
    CLUSTER_RETRIES,
    CLUSTER_RETRY_BASE_SECONDS,
    CLUSTER_RETRY_CAP_SECONDS,
    POOL_WAIT_SECONDS,
    SYNC_MAX_CONNECTIONS,
)

if TYPE_CHECKING:
    import redis
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster

SyncRedis: TypeAlias = "redis.Redis | RedisCluster"
AsyncRedis: TypeAlias = "aioredis.Redis | AsyncRedisCluster"
# One script call: (the Lua source, its KEYS, its ARGV).
ScriptCall: TypeAlias = tuple[str, Sequence[Any], Sequence[Any]]

SUBSCRIBER_HEALTH_CHECK_SECONDS = 15
_SETTINGS = {"REDIS_URL", "REDIS_CLUSTER", "REDIS_SOCKET_CONNECT_TIMEOUT", "REDIS_SOCKET_TIMEOUT"}


@dataclass(slots=True)
class _LoopClient:
    client: AsyncRedis
    scripts: dict[str, Any] = field(default_factory=dict)


def _async_connections(client: AsyncRedis) -> list[Any]:
    """Every connection an asyncio client holds (redis.asyncio keeps no public list)."""
    import redis.asyncio as aioredis

    pools: list[Any] = (
        [client.connection_pool]
        if isinstance(client, aioredis.Redis)
        else client.get_nodes()  # a cluster node is its own pool
    )
    return [
        connection
        for pool in pools
        for name in ("_available_connections", "_in_use_connections", "_connections")
        for connection in getattr(pool, name, ())
    ]


def _shut_down(entry: _LoopClient) -> None:
    """Release a closed loop's connections: the loop cannot run ``aclose()`` any more, so
    the sockets are shut down (Redis frees the clients now) and freed with the objects."""
    for connection in _async_connections(entry.client):
        writer = getattr(connection, "_writer", None)
        sock = writer.get_extra_info("socket") if writer is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the peer
                sock.shutdown(socket.SHUT_RDWR)


class RedisConnections:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: SyncRedis | None = None
        self._sync_scripts: dict[str, Any] = {}
        self._by_loop: PerLoopRegistry[_LoopClient] = PerLoopRegistry(
            lambda _loop: _LoopClient(self._new_async_client()), on_drop=_shut_down
        )

    # --- configuration ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        url: str = settings.REDIS_URL
        return url

    @property
    def cluster(self) -> bool:
        """``REDIS_CLUSTER``: the URL is a seed node of a Redis Cluster."""
        return bool(getattr(settings, "REDIS_CLUSTER", False))

    @property
    def timeouts(self) -> dict[str, float]:
        """The socket timeouts every request/response client gets."""
        return redis_settings.configured().timeouts

    # --- clients ---------------------------------------------------------------------------
    def sync_client(self) -> SyncRedis:
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    self._sync = self._make_sync_client(
                        self.url, max_connections=SYNC_MAX_CONNECTIONS, timeout=POOL_WAIT_SECONDS
                    )
                client = self._sync
        return client

    def _make_sync_client(self, url: str, **pool: Any) -> SyncRedis:
        """A blocking-pool client of ``url`` with the configured timeouts (and ``pool``'s
        caps): a cluster client with ``REDIS_CLUSTER``."""
        import redis

        if self.cluster:
            return sync_cluster_client(url, **self.timeouts, **pool)
        if pool:
            return redis.Redis(
                connection_pool=redis.BlockingConnectionPool.from_url(url, **self.timeouts, **pool)
            )
        return redis.Redis.from_url(url, **self.timeouts)

    def sync_script(self, lua: str) -> Any:
        """``lua`` registered on the process's client (a ``redis.commands.core.Script``)."""
        script = self._sync_scripts.get(lua)
        if script is None:
            script = self._sync_scripts[lua] = self.sync_client().register_script(lua)
        return script

    def async_client(self) -> AsyncRedis:
        """The running event loop's client."""
        return self._by_loop.get().client

    def async_script(self, lua: str) -> Any:
        """``lua`` registered on the running loop's client (an ``AsyncScript``)."""
        entry = self._by_loop.get()
        script = entry.scripts.get(lua)
        if script is None:
            script = entry.scripts[lua] = entry.client.register_script(lua)
        return script

    def _new_async_client(self) -> AsyncRedis:
        import redis.asyncio as aioredis

        if self.cluster:
            return async_cluster_client(
                self.url, max_connections=ASYNC_CLUSTER_MAX_CONNECTIONS, **self.timeouts
            )
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=ASYNC_MAX_CONNECTIONS,
            timeout=POOL_WAIT_SECONDS,
            **self.timeouts,
        )
        return aioredis.Redis(connection_pool=pool)

    def subscriber_client(self, *, client_name: str) -> AsyncRedis:
        """A new client for a pub/sub reader (and its few companion commands); the caller
        closes it. ``client_name`` shows in ``CLIENT LIST``.

        On a cluster the reader polls with a timeout of its own (a sharded subscription
        may move between nodes), so its connections keep the configured socket timeout."""
        import redis.asyncio as aioredis

        if self.cluster:
            return async_cluster_client(
                self.url,
                max_connections=ASYNC_CLUSTER_MAX_CONNECTIONS,
                health_check_interval=SUBSCRIBER_HEALTH_CHECK_SECONDS,
                client_name=client_name,
                **self.timeouts,
            )
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            socket_connect_timeout=self.timeouts["socket_connect_timeout"],
            socket_timeout=None,  # a blocking read waits for the next message, however long
            health_check_interval=SUBSCRIBER_HEALTH_CHECK_SECONDS,
            max_connections=ASYNC_MAX_CONNECTIONS,
            timeout=POOL_WAIT_SECONDS,
            client_name=client_name,
        )
        return aioredis.Redis(connection_pool=pool)

    def new_sync_client(self, url: str | None = None) -> SyncRedis:
        """A private client with the configured timeouts; the caller closes it."""
        return self._make_sync_client(url or self.url)

    def loop_client_count(self) -> int:
        """How many event loops hold a client (for tests of the cleanup)."""
        return len(self._by_loop)

    # --- scripts in pipelines --------------------------------------------------------------
    def eval_many(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Each call's reply, all calls in one pipeline: one round trip on a single Redis,
        one per node touched (in parallel) on a cluster. A call whose script the server
        lost (a restart empties the script cache) is run again after loading it; the
        calls that ran are not repeated."""
        import redis

        client = self.sync_client()
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in (1, 2):
            pipe = _script_pipeline(client, [calls[index] for index in todo])
            results = pipe.execute(raise_on_error=False)
            todo = _take(replies, todo, results, last=attempt == 2)
            if not todo:
                return replies
            for lua in {calls[index][0] for index in todo}:
                client.script_load(lua)  # a cluster client loads it on every master
        raise redis.exceptions.NoScriptError("scripts could not be loaded")  # unreachable

    async def aeval_many(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """:meth:`eval_many` on the running loop's client."""
        import redis

        client = self.async_client()
        await client.initialize()  # a cluster client's slot map (once); else nothing
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in (1, 2):
            pipe = _script_pipeline(client, [calls[index] for index in todo])
            results = await pipe.execute(raise_on_error=False)
            todo = _take(replies, todo, results, last=attempt == 2)
            if not todo:
                return replies
            for lua in {calls[index][0] for index in todo}:
                await client.script_load(lua)
        raise redis.exceptions.NoScriptError("scripts could not be loaded")  # unreachable

    def reset(self) -> None:
        """Forget every client (settings changed); the next use makes new ones."""
        with self._lock:
            self._sync = None
            self._sync_scripts = {}
        self._by_loop.clear()


def _script_pipeline(client: Any, calls: Sequence[ScriptCall]) -> Any:
    """A pipeline (sync or async, as ``client``) of ``EVALSHA`` for each call."""
    pipe = client.pipeline(transaction=False)
    cluster = hasattr(client, "get_node_from_key")
    for lua, keys, args in calls:
        # A cluster pipeline, not told a script's node, asks a server which keys EVALSHA
        # has (COMMAND GETKEYS: a round trip per call); the node of its first key is its
        # node (all its keys share a slot). execute_command: a cluster pipeline blocks
        # its evalsha() method.
        options = {"target_nodes": client.get_node_from_key(keys[0])} if keys and cluster else {}
        pipe.execute_command("EVALSHA", _sha(lua), len(keys), *keys, *args, **options)
    return pipe


def _sha(lua: str) -> str:
    import hashlib

    return hashlib.sha1(lua.encode()).hexdigest()  # noqa: S324 (the server's script id)


def _take(replies: list[Any], todo: list[int], results: Iterable[Any], *, last: bool) -> list[int]:
    """Store the results of the calls ``todo`` in ``replies``; return the calls to run
    again (their script was missing). Any other error is raised, as is a missing script
    on the ``last`` attempt."""
    import redis

    again = []
    for index, result in zip(todo, results, strict=True):
        if isinstance(result, redis.exceptions.NoScriptError) and not last:
            again.append(index)
        elif isinstance(result, Exception):
            raise result
        else:
            replies[index] = result
    return again


def _cluster_retry(retry_class: Any, backoff_class: Any) -> Any:
    return retry_class(
        backoff_class(base=CLUSTER_RETRY_BASE_SECONDS, cap=CLUSTER_RETRY_CAP_SECONDS),
        retries=CLUSTER_RETRIES,
    )


def sync_cluster_client(url: str, **options: Any) -> RedisCluster:
    """A blocking cluster client seeded from ``url`` (one node of the cluster): each node's
    pool is a ``BlockingConnectionPool`` (``max_connections``, ``timeout`` in
    ``options``), commands retried as ``redis_settings.CLUSTER_RETRIES`` says."""
    import redis
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.cluster import RedisCluster
    from redis.retry import Retry

    if "max_connections" in options:
        options.setdefault("connection_pool_class", redis.BlockingConnectionPool)
    return RedisCluster.from_url(
        url, retry=_cluster_retry(Retry, ExponentialWithJitterBackoff), **options
    )


def async_cluster_client(url: str, **options: Any) -> AsyncRedisCluster:
    """The asyncio counterpart of :func:`sync_cluster_client`."""
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    return RedisCluster.from_url(
        url, retry=_cluster_retry(Retry, ExponentialWithJitterBackoff), **options
    )


connections = RedisConnections()


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS:
        connections.reset()
