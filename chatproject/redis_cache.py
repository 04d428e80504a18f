"""Django's Redis cache on a Redis Cluster (``REDIS_CLUSTER``).

Django's ``RedisCache`` makes plain ``redis.Redis`` clients, which a cluster answers with
MOVED for most keys. :class:`RedisClusterCache` is that cache with a cluster client
(seeded from ``LOCATION``, the ``OPTIONS`` of ``redis_settings.RedisSettings.caches()``:
timeouts and per-node blocking pools) and the multi-key operations split per slot:
``get_many`` reads each node's keys in one pipeline, ``set_many`` writes them without
``MSET`` (one slot only), ``clear`` flushes every master. Cache keys carry no hash tag:
they spread over the cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.module_loading import import_string

from .redis_connections import sync_cluster_client

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from redis.cluster import RedisCluster


class RedisClusterCacheClient(RedisCacheClient):
    # Set by RedisCacheClient.__init__ (not in django-stubs).
    _servers: list[str]
    _serializer: Any

    def __init__(
        self,
        servers: list[str],
        serializer: Any = None,
        pool_class: Any = None,
        parser_class: Any = None,
        **options: Any,
    ) -> None:
        super().__init__(servers, serializer=serializer, parser_class=parser_class, **options)
        if isinstance(pool_class, str):
            pool_class = import_string(pool_class)
        self._cluster_options = (
            {**options, "connection_pool_class": pool_class} if pool_class else options
        )
        self._cluster: RedisCluster | None = None

    # Django's client only calls commands on it, which a cluster client has too.
    def get_client(self, key: Any = None, *, write: bool = False) -> RedisCluster:  # type: ignore[override]
        # Django keeps one client per cache object and thread (caches are thread-local);
        # a cluster client holds the slot map, so it is made once, not per call.
        if self._cluster is None:
            self._cluster = sync_cluster_client(self._servers[0], **self._cluster_options)
        return self._cluster

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        keys = list(keys)
        values = self.get_client(None).mget_nonatomic(keys)
        return {
            key: self._serializer.loads(value)
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }

    def set_many(self, data: Mapping[Any, Any], timeout: Any) -> None:
        pipeline = self.get_client(None, write=True).pipeline(transaction=False)  # type: ignore[no-untyped-call]
        for key, value in data.items():
            pipeline.set(key, self._serializer.dumps(value), ex=timeout)
        pipeline.execute()


class RedisClusterCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisClusterCacheClient
