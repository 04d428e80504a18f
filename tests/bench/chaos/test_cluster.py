"""The fault runner's cluster: the production configuration on its own services and ports.

Production configuration only (it starts PostgreSQL and Redis servers: see conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import redis

from bench.chaos.cluster import Cluster
from bench.chaos.services import process_state

from .conftest import hello, needs_cluster, sign_up

pytestmark = [pytest.mark.e2e, needs_cluster]
SHARED_PORTS = {5432, 6379}


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def test_runs_on_its_own_postgres_and_redis(cluster: Cluster) -> None:
    suite_ports = {
        _port(os.environ[name]) for name in ("DATABASE_URL", "REDIS_URL") if name in os.environ
    }
    own = {cluster.postgres.port, cluster.redis.port}
    assert not own & (SHARED_PORTS | suite_ports)
    for server in cluster.servers:
        # Every process reaches the services only through its own proxies.
        assert _port(server.env["DATABASE_URL"]) == server.postgres_proxy.port
        assert _port(server.env["REDIS_URL"]) == server.redis_proxy.port
        assert server.postgres_proxy.upstream_port == cluster.postgres.port
        assert server.redis_proxy.upstream_port == cluster.redis.port
    proxies = [
        port for s in cluster.servers for port in (s.postgres_proxy.port, s.redis_proxy.port)
    ]
    assert len(set(proxies)) == len(proxies) == 2 * len(cluster.servers)


@pytest.mark.parametrize("index", [0, 1])
async def test_sign_up_and_hello_through_each_server(cluster: Cluster, index: int) -> None:
    server = cluster.servers[index]
    user_id, token = sign_up(server.http_url)
    frame = await hello(server.ws_url, token)
    assert frame["type"] == "hello"
    with psycopg.connect(cluster.database_url) as conn:  # the checker's direct path
        row = conn.execute("SELECT username FROM accounts_user WHERE id = %s", [user_id]).fetchone()
    assert row is not None
    assert row[0].startswith("chaos")
    # It got there through its own proxies (the only addresses it was given).
    assert server.postgres_proxy.accepted > 0
    assert server.redis_proxy.accepted > 0


def test_the_worker_pushes_to_the_local_receivers(cluster: Cluster) -> None:
    """A message to an offline device goes out through the broker, the worker and the Web
    Push protocol to the cluster's receiver."""
    http_url = cluster.http_urls[0]
    _, sender = sign_up(http_url)
    receiver_id, receiver = sign_up(cluster.http_urls[1])
    subscription = cluster.push_receiver.new_subscription(f"chaos-{receiver_id}")
    registered = httpx.post(
        cluster.http_urls[1] + "/api/v1/push/registrations",
        json={"kind": "webpush", "subscription": subscription.as_json()},
        headers={"Authorization": f"Bearer {receiver}"},
    )
    assert registered.status_code in (200, 201), registered.text
    auth = {"Authorization": f"Bearer {sender}"}
    conversation = httpx.post(
        http_url + "/api/v1/conversations",
        json={"kind": "direct", "user_id": receiver_id},
        headers=auth,
    ).json()["id"]
    sent = httpx.post(
        f"{http_url}/api/v1/conversations/{conversation}/messages",
        json={"client_msg_id": "chaos-push-1", "text": "are you there?"},
        headers=auth,
    )
    assert sent.status_code == 201, sent.text
    cluster.push_receiver.wait_for(lambda got: any(p.target == subscription.name for p in got))
    assert not cluster.push_receiver.rejected
    assert cluster.worker_consumes()


def test_exit_stops_every_process_and_removes_its_folder() -> None:
    with Cluster(servers=1) as small:
        processes = [small.servers[0].process, small.worker.process, small.redis.process]
        pids = [process.pid if process else None for process in processes]
        pids.append(small.postgres.pid)
        workdir = small.workdir
        redis_port, postgres_port = small.redis.port, small.postgres.port
        assert all(pids)
        assert workdir.is_dir()
    for pid in pids:
        assert pid is not None
        assert process_state(pid) in ("", "Z")  # gone (or exited, awaiting its parent)
    assert not Path(workdir).exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=redis_port, socket_timeout=2).ping()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            f"postgres://postgres@127.0.0.1:{postgres_port}/postgres", connect_timeout=2
        )
