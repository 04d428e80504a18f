"""One Redis configuration (chatproject/redis_settings.py): the Django cache and the channel
layer use the Redis, timeouts and pool caps the connection handler uses. Against the
configured Redis: what the cache and the layer write lands on the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.cluster

# The configuration's own test: it opens the layer the app never uses directly.
from channels.layers import get_channel_layer  # noqa: TID251
from django.conf import settings as django_settings
from django.core.cache import cache
from django.utils.module_loading import import_string

from chatproject import redis_settings
from chatproject.redis_connections import SyncRedis, connections
from chatproject.redis_settings import RedisSettings

needs_redis = pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL")


on_cluster = pytest.mark.skipif(not django_settings.REDIS_CLUSTER, reason="needs REDIS_CLUSTER")
not_on_cluster = pytest.mark.skipif(
    django_settings.REDIS_CLUSTER, reason="channels-redis has no cluster support"
)


@pytest.fixture
def raw_client() -> Iterator[SyncRedis]:
    """A client of its own on the configured URL (and so on its database number)."""
    client = connections.new_sync_client()
    yield client
    client.close()


def _pools(client: Any) -> list[Any]:
    """The connection pools of a cache's client: its one, or one per cluster node."""
    if isinstance(client, redis.cluster.RedisCluster):
        return [node.redis_connection.connection_pool for node in client.get_nodes()]  # type: ignore[no-untyped-call]
    return [client.connection_pool]


def test_cache_and_channel_layer_are_derived_from_the_redis_settings() -> None:
    configured = redis_settings.configured()
    assert configured.caches() == django_settings.CACHES
    assert configured.channel_layers() == django_settings.CHANNEL_LAYERS
    assert connections.timeouts == configured.timeouts


def test_without_a_url_cache_and_channel_layer_are_in_process() -> None:
    embedded = RedisSettings("")
    assert embedded.caches()["default"]["BACKEND"].endswith("LocMemCache")
    assert embedded.channel_layers()["default"]["BACKEND"].endswith("InMemoryChannelLayer")


@needs_redis
def test_the_cache_writes_to_the_configured_redis_with_the_configured_timeouts(
    raw_client: SyncRedis,
) -> None:
    cache.set("probe", "value", 30)

    # Django's key format: KEY_PREFIX:VERSION:key.
    assert raw_client.exists(":1:probe") == 1
    expected_db = _pools(raw_client)[0].connection_kwargs.get("db", 0)
    for pool in _pools(cache._cache.get_client(write=True)):  # type: ignore[attr-defined]
        assert isinstance(pool, redis.BlockingConnectionPool)
        assert pool.max_connections == redis_settings.SYNC_MAX_CONNECTIONS
        assert pool.connection_kwargs.get("db", 0) == expected_db
        for name, seconds in redis_settings.configured().timeouts.items():
            assert pool.connection_kwargs[name] == seconds


@needs_redis
def test_other_timeouts_reach_a_cache_built_from_them(raw_client: SyncRedis) -> None:
    options: dict[str, Any] = RedisSettings(
        django_settings.REDIS_URL, 2.0, 3.0, cluster=django_settings.REDIS_CLUSTER
    ).caches()["default"]
    other = import_string(options["BACKEND"])(options["LOCATION"], {"OPTIONS": options["OPTIONS"]})
    other.set("other-probe", 1, 30)
    assert raw_client.exists(":1:other-probe") == 1
    for pool in _pools(other._cache.get_client(write=True)):
        kwargs = pool.connection_kwargs
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (2.0, 3.0)


@on_cluster
def test_on_a_cluster_the_cache_spans_the_masters_and_there_is_no_channel_layer() -> None:
    # Keys of every slot: a plain Redis client would be answered MOVED for most.
    values = {f"spread-{n}": n for n in range(50)}
    cache.set_many(values, 30)
    assert cache.get_many([*values, "missing"]) == values
    cache.delete_many(list(values)[:25])
    assert cache.get_many(list(values)) == dict(list(values.items())[25:])
    cache.clear()
    assert cache.get_many(list(values)) == {}
    assert get_channel_layer() is None  # consumers get channel_layer = None


@needs_redis
@not_on_cluster
async def test_the_channel_layer_uses_the_configured_redis(raw_client: SyncRedis) -> None:
    layer: Any = get_channel_layer()
    await layer.send("probe", {"type": "probe.message", "n": 1})

    assert raw_client.keys("asgi*")  # on the configured database
    assert (await layer.receive("probe"))["n"] == 1
    kwargs = layer.connection(0).connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == redis_settings.configured().socket_connect_timeout
    # channels_redis#422: the layer's blocking reads have no socket timeout.
    assert kwargs["socket_timeout"] is None
    assert layer.connection(0).connection_pool.max_connections == (
        redis_settings.CHANNEL_LAYER_MAX_CONNECTIONS
    )
    await layer.flush()
