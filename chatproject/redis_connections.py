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

Settings: ``REDIS_URL``; ``REDIS_SOCKET_CONNECT_TIMEOUT`` and ``REDIS_SOCKET_TIMEOUT``
(seconds, default 5 each), read through ``chatproject/redis_settings.py``, which also
derives the Django cache and the channel layer from them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import redis_settings
from .per_loop import PerLoopRegistry
from .redis_settings import ASYNC_MAX_CONNECTIONS, POOL_WAIT_SECONDS, SYNC_MAX_CONNECTIONS

if TYPE_CHECKING:
    import redis
    import redis.asyncio as aioredis

SUBSCRIBER_HEALTH_CHECK_SECONDS = 15
_SETTINGS = {"REDIS_URL", "REDIS_SOCKET_CONNECT_TIMEOUT", "REDIS_SOCKET_TIMEOUT"}


@dataclass(slots=True)
class _LoopClient:
    client: aioredis.Redis
    scripts: dict[str, Any] = field(default_factory=dict)


def _shut_down(entry: _LoopClient) -> None:
    """Release a closed loop's connections: the loop cannot run ``aclose()`` any more, so
    the sockets are shut down (Redis frees the clients now) and freed with the objects."""
    pool = entry.client.connection_pool
    # redis.asyncio keeps no public list of a pool's connections.
    connections = [
        *getattr(pool, "_available_connections", ()),
        *getattr(pool, "_in_use_connections", ()),
    ]
    for connection in connections:
        writer = getattr(connection, "_writer", None)
        sock = writer.get_extra_info("socket") if writer is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the peer
                sock.shutdown(socket.SHUT_RDWR)


class RedisConnections:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: redis.Redis | None = None
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
    def timeouts(self) -> dict[str, float]:
        """The socket timeouts every request/response client gets."""
        return redis_settings.configured().timeouts

    # --- clients ---------------------------------------------------------------------------
    def sync_client(self) -> redis.Redis:
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    import redis

                    pool = redis.BlockingConnectionPool.from_url(
                        self.url,
                        max_connections=SYNC_MAX_CONNECTIONS,
                        timeout=POOL_WAIT_SECONDS,
                        **self.timeouts,
                    )
                    self._sync = redis.Redis(connection_pool=pool)
                client = self._sync
        return client

    def sync_script(self, lua: str) -> Any:
        """``lua`` registered on the process's client (a ``redis.commands.core.Script``)."""
        script = self._sync_scripts.get(lua)
        if script is None:
            script = self._sync_scripts[lua] = self.sync_client().register_script(lua)
        return script

    def async_client(self) -> aioredis.Redis:
        """The running event loop's client."""
        return self._by_loop.get().client

    def async_script(self, lua: str) -> Any:
        """``lua`` registered on the running loop's client (an ``AsyncScript``)."""
        entry = self._by_loop.get()
        script = entry.scripts.get(lua)
        if script is None:
            script = entry.scripts[lua] = entry.client.register_script(lua)
        return script

    def _new_async_client(self) -> aioredis.Redis:
        import redis.asyncio as aioredis

        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=ASYNC_MAX_CONNECTIONS,
            timeout=POOL_WAIT_SECONDS,
            **self.timeouts,
        )
        return aioredis.Redis(connection_pool=pool)

    def subscriber_client(self, *, client_name: str) -> aioredis.Redis:
        """A new client for a pub/sub reader (and its few companion commands); the caller
        closes it. ``client_name`` shows in ``CLIENT LIST``."""
        import redis.asyncio as aioredis

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

    def new_sync_client(self, url: str | None = None) -> redis.Redis:
        """A private client with the configured timeouts; the caller closes it."""
        import redis

        return redis.Redis.from_url(url or self.url, **self.timeouts)

    def loop_client_count(self) -> int:
        """How many event loops hold a client (for tests of the cleanup)."""
        return len(self._by_loop)

    def reset(self) -> None:
        """Forget every client (settings changed); the next use makes new ones."""
        with self._lock:
            self._sync = None
            self._sync_scripts = {}
        self._by_loop.clear()


connections = RedisConnections()


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS:
        connections.reset()
