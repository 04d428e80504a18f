"""The configured Redis as its servers: one plain client per server (the single Redis, or
each master of a Redis Cluster), for tests that look at or act on connections
(``CLIENT LIST``/``KILL``), which a cluster client does not address per server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings

from chatproject.redis_connections import connections


@contextmanager
def servers() -> Iterator[list[redis.Redis]]:
    """A plain client per server (on the configured database), closed afterwards."""
    if settings.REDIS_CLUSTER:
        cluster = connections.new_sync_client()
        nodes = cluster.get_primaries()  # type: ignore[union-attr]
        cluster.close()
        clients = [redis.Redis(host=node.host, port=node.port) for node in nodes]
    else:
        clients = [redis.Redis.from_url(settings.REDIS_URL)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def client_ids() -> set[tuple[int, int]]:
    """(port, id) of every client connected to the servers."""
    with servers() as clients:
        return {
            (client.get_connection_kwargs()["port"], int(entry["id"]))
            for client in clients
            for entry in client.client_list()
        }


def kill_clients(name: str, *, subscribers_only: bool = False) -> int:
    """Close, on every server, the connections of clients called ``name``; how many."""
    killed = 0
    with servers() as clients:
        for client in clients:
            for entry in client.client_list():
                is_subscriber = entry.get("sub") != "0" or entry.get("ssub", "0") != "0"
                if entry.get("name") == name and (is_subscriber or not subscribers_only):
                    killed += client.client_kill_filter(_id=entry["id"])
    return killed
