"""The contract of the one Redis connection handler (chatproject/redis_connections.py) and
of the per-loop registry it and every per-loop singleton share (chatproject/per_loop.py)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.cluster
from django.conf import settings as django_settings

from chatproject.per_loop import PerLoopRegistry
from chatproject.redis_connections import RedisConnections
from tests.redis_servers import client_ids

needs_redis = pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL")


# --- the per-loop registry (no Redis needed) -----------------------------------------------


def test_registry_gives_one_value_per_loop_and_drops_closed_loops() -> None:
    dropped: list[object] = []
    registry: PerLoopRegistry[object] = PerLoopRegistry(
        lambda _loop: object(), on_drop=dropped.append
    )

    async def twice() -> tuple[object, object]:
        return registry.get(), registry.get()

    first_loop = asyncio.new_event_loop()
    first, again = first_loop.run_until_complete(twice())
    assert first is again
    assert registry.live() == [first]
    first_loop.close()
    assert registry.live() == []

    second_loop = asyncio.new_event_loop()
    try:
        second, _ = second_loop.run_until_complete(twice())
    finally:
        second_loop.close()
    assert second is not first
    assert dropped == [first]  # released when the next loop asked, not left for the GC
    assert len(registry) == 1


# --- the handler, against the configured Redis ---------------------------------------------


def _options(client: Any) -> dict[str, Any]:
    """The connection options of a client's connections (a cluster client's, every node's)."""
    if isinstance(client, redis.Redis | redis.asyncio.Redis):
        kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
    elif isinstance(client, redis.cluster.RedisCluster):
        kwargs = client.nodes_manager.connection_kwargs
    else:
        kwargs = client.connection_kwargs
    return kwargs


async def _connection_id(client: Any) -> tuple[int, int]:
    """(server port, connection id) of one of ``client``'s connections."""
    if isinstance(client, redis.asyncio.Redis):
        return client.connection_pool.connection_kwargs.get("port", 6379), int(
            await client.client_id()
        )
    await client.initialize()
    node = client.get_default_node()
    return node.port, int(await client.execute_command("CLIENT ID", target_nodes=node))


@needs_redis
def test_same_client_within_a_loop_and_another_per_loop() -> None:
    handler = RedisConnections()

    async def clients() -> tuple[Any, Any]:
        client = handler.async_client()
        assert await client.ping()
        return client, handler.async_client()

    first, same = asyncio.run(clients())
    second, _ = asyncio.run(clients())
    assert first is same
    assert second is not first
    assert handler.sync_client() is handler.sync_client()


@needs_redis
def test_a_closed_loops_client_is_released() -> None:
    handler = RedisConnections()

    held: list[Any] = []  # keeps the old client alive: the garbage collector cannot close it

    async def connection_id() -> tuple[int, int]:
        held.append(handler.async_client())
        return await _connection_id(held[-1])

    loop = asyncio.new_event_loop()
    old_id = loop.run_until_complete(connection_id())
    loop.close()
    assert old_id in client_ids()  # nobody could close it on the closed loop

    asyncio.run(connection_id())  # a new loop's first use drops the closed one's pool
    assert handler.loop_client_count() == 1
    deadline = time.monotonic() + 5
    while old_id in client_ids():
        assert time.monotonic() < deadline, "the closed loop's connection stayed open"
        time.sleep(0.05)


@needs_redis
def test_timeouts_are_applied(settings: Any) -> None:
    settings.REDIS_SOCKET_CONNECT_TIMEOUT = 2
    settings.REDIS_SOCKET_TIMEOUT = 3
    handler = RedisConnections()

    async def loop_clients() -> tuple[Any, Any]:
        return handler.async_client(), handler.subscriber_client(client_name="test")

    async_client, subscriber = asyncio.run(loop_clients())
    lease_client = handler.new_sync_client()
    for client in (handler.sync_client(), async_client, lease_client):
        assert _options(client)["socket_connect_timeout"] == 2
        assert _options(client)["socket_timeout"] == 3
    if django_settings.REDIS_CLUSTER:
        # A sharded reader polls with a timeout of its own; its other commands time out.
        assert _options(subscriber)["socket_timeout"] == 3
    else:
        # A pub/sub reader blocks until the next message: its reads must never time out.
        assert _options(subscriber)["socket_timeout"] is None
    assert _options(subscriber)["socket_connect_timeout"] == 2
    assert _options(subscriber)["client_name"] == "test"
    lease_client.close()


@needs_redis
def test_defaults_and_reset_on_setting_change(settings: Any) -> None:
    from chatproject.redis_connections import connections

    client = connections.sync_client()
    assert _options(client)["socket_timeout"] == 5
    assert _options(client)["socket_connect_timeout"] == 5
    settings.REDIS_SOCKET_TIMEOUT = 1
    assert connections.sync_client() is not client
    assert _options(connections.sync_client())["socket_timeout"] == 1


@needs_redis
def test_a_forked_child_opens_its_own_connection() -> None:
    handler = RedisConnections()
    parent_id = int(handler.sync_client().client_id())
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the connection its first command used, then leave
        try:
            os.write(write_end, str(handler.sync_client().client_id()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_id = int(os.read(read_end, 64))
    os.close(read_end)
    os.waitpid(pid, 0)
    assert child_id != parent_id
    assert int(handler.sync_client().client_id()) == parent_id  # the parent's is untouched
