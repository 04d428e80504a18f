"""One Redis configuration (chatproject/redis_settings.py): the Django cache and the channel
layer use the Redis, timeouts and pool caps the connection handler uses. Against the
configured Redis: what the cache and the layer write lands on the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

# The configuration's own test: it opens the layer the app never uses directly.
from channels.layers import get_channel_layer  # noqa: TID251
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache

from chatproject import redis_settings
from chatproject.redis_connections import connections
from chatproject.redis_settings import RedisSettings

needs_redis = pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL")


@pytest.fixture
def raw_client() -> Iterator[redis.Redis]:
    """A plain client on the configured URL (and so on its database number)."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    yield client
    client.close()


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
    raw_client: redis.Redis,
) -> None:
    cache.set("probe", "value", 30)

    # Django's key format: KEY_PREFIX:VERSION:key.
    assert raw_client.exists(":1:probe") == 1
    pool = cache._cache.get_client(write=True).connection_pool  # type: ignore[attr-defined]
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections == redis_settings.SYNC_MAX_CONNECTIONS
    expected_db = raw_client.connection_pool.connection_kwargs.get("db", 0)
    assert pool.connection_kwargs["db"] == expected_db
    for name, seconds in redis_settings.configured().timeouts.items():
        assert pool.connection_kwargs[name] == seconds


@needs_redis
def test_other_timeouts_reach_a_cache_built_from_them(raw_client: redis.Redis) -> None:
    options: dict[str, Any] = RedisSettings(django_settings.REDIS_URL, 2.0, 3.0).caches()["default"]
    other = RedisCache(options["LOCATION"], {"OPTIONS": options["OPTIONS"]})
    other.set("other-probe", 1, 30)
    assert raw_client.exists(":1:other-probe") == 1
    client = other._cache.get_client(write=True)  # type: ignore[attr-defined]
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (2.0, 3.0)


@needs_redis
async def test_the_channel_layer_uses_the_configured_redis(raw_client: redis.Redis) -> None:
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
