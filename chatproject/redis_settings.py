"""The one Redis configuration: the URL, timeouts and pool caps every Redis user derives from.

With ``REDIS_CLUSTER`` the URL names any one node of a Redis Cluster (the seed the
clients discover the others from), and every client is a cluster client: the Django
cache is :class:`chatproject.redis_cache.RedisClusterCache`, and there is no channel
layer (channels-redis does not speak the cluster protocol, and no code of ours uses the
layer: realtime delivery is ``chat.realtime``'s own pub/sub).

``settings.py`` builds ``CACHES`` and ``CHANNEL_LAYERS`` from :class:`RedisSettings` (it
cannot use the connection handler, which reads settings), and
``chatproject/redis_connections.py`` reads the same values back through
:func:`configured`, so the Django cache, the channel layer and the handler's own clients
talk to the same Redis with the same timeouts. Without a URL (embedded) the cache and the
channel layer are in-process.

Nothing here opens a connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT_SECONDS = 5.0
# Blocking pools: under a burst, callers wait up to POOL_WAIT_SECONDS for a connection
# instead of failing with "Too many connections" (redis-py's default pool raises at 100).
SYNC_MAX_CONNECTIONS = 200
ASYNC_MAX_CONNECTIONS = 64
POOL_WAIT_SECONDS = 10
# channels_redis#422: channels-redis makes plain (non-blocking) redis-py pools, which in
# redis-py 8 stop at 100 connections and then raise "Too many connections"; each receive
# holds one in a blocking read, so the layer's cap is raised.
CHANNEL_LAYER_MAX_CONNECTIONS = 1000
# Cluster clients: a command that meets a connection error, a timeout or a cluster that is
# down (a failover under way) refreshes the slot map and is retried CLUSTER_RETRIES times,
# with exponential backoff (jittered) from CLUSTER_RETRY_BASE_SECONDS up to
# CLUSTER_RETRY_CAP_SECONDS: about 3 s in all, then the error reaches the caller (as a
# single Redis outage does). MOVED and ASK redirections (slot migrations) are followed
# at once by redis-py and cost no retry.
CLUSTER_RETRIES = 5
CLUSTER_RETRY_BASE_SECONDS = 0.1
CLUSTER_RETRY_CAP_SECONDS = 1.0
# redis.asyncio's cluster pools do not wait for a free connection: past the cap a command
# fails at once. Per node and per event loop, so set well above a burst's concurrency.
ASYNC_CLUSTER_MAX_CONNECTIONS = 1000


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    socket_connect_timeout: float = DEFAULT_TIMEOUT_SECONDS
    socket_timeout: float = DEFAULT_TIMEOUT_SECONDS
    cluster: bool = False

    @property
    def timeouts(self) -> dict[str, float]:
        """The socket timeouts every request/response client gets."""
        return {
            "socket_connect_timeout": self.socket_connect_timeout,
            "socket_timeout": self.socket_timeout,
        }

    def caches(self) -> dict[str, Any]:
        """``CACHES``: Redis with the handler's timeouts and blocking pool, else in-process."""
        if not self.url:
            return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        options = {
            "pool_class": "redis.BlockingConnectionPool",
            "max_connections": SYNC_MAX_CONNECTIONS,
            "timeout": POOL_WAIT_SECONDS,
            **self.timeouts,
        }
        backend = (
            "chatproject.redis_cache.RedisClusterCache"
            if self.cluster
            else "django.core.cache.backends.redis.RedisCache"
        )
        return {
            "default": {
                "BACKEND": backend,
                "LOCATION": self.url,
                "OPTIONS": options,
            }
        }

    def channel_layers(self) -> dict[str, Any]:
        """``CHANNEL_LAYERS``: channels-redis on the same Redis, else Channels' in-memory layer.

        On a cluster: none. channels-redis cannot use a Redis Cluster, and nothing uses the
        layer (consumers get ``channel_layer = None``); a layer in memory would only turn a
        future use into deliveries that silently stay in one process."""
        if self.cluster:
            return {}
        if not self.url:
            return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        host = {
            "address": self.url,
            "socket_connect_timeout": self.socket_connect_timeout,
            # channels_redis#422: the layer's receive is a blocking read (BZPOPMIN) that may
            # wait as long as it likes; redis-py 8's socket timeout would cut it off under
            # load, so the layer's reads have none (as the handler's pub/sub reader).
            "socket_timeout": None,
            "max_connections": CHANNEL_LAYER_MAX_CONNECTIONS,
        }
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                # The default capacity of 100 silently drops messages.
                "CONFIG": {"hosts": [host], "capacity": 10_000, "expiry": 60},
            }
        }


def configured() -> RedisSettings:
    """The Redis settings of the running configuration (``REDIS_URL``, ``REDIS_CLUSTER``,
    ``REDIS_SOCKET_CONNECT_TIMEOUT``, ``REDIS_SOCKET_TIMEOUT``)."""
    from django.conf import settings

    return RedisSettings(
        url=settings.REDIS_URL,
        cluster=bool(getattr(settings, "REDIS_CLUSTER", False)),
        socket_connect_timeout=float(
            getattr(settings, "REDIS_SOCKET_CONNECT_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)
        ),
        socket_timeout=float(getattr(settings, "REDIS_SOCKET_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)),
    )
