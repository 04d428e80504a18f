"""Three chat hosts behind nginx, and one of them drops off the network.

Each host is a network namespace with an address of its own on a private bridge
(tests/e2e/netns.py) and runs one ``manage.py serve`` on that address; they reach
PostgreSQL and Redis through TCP proxies on the bridge's address in the root namespace
(bench.chaos.proxy), as machines on a LAN reach a database server. nginx, in the root
namespace, balances the devices (which know only its address) over the three. Then one
host's link goes down: nothing is refused, its packets are simply lost.

What users must see: the people on the other hosts go on chatting without a hitch; the
people on the lost host notice a silent connection (no pong), reconnect through nginx to
the other hosts and sync from their cursors, so nothing is lost or duplicated; and
``GET /api/v1/chat-servers/best`` stops naming the lost host once its registry record's
time to live has run out.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings

from bench.chaos.checker import check
from bench.chaos.proxy import ProxyHub
from bench.chaos.workload import Workload
from bench.targets import OwnedProcess
from chat.registry.redis import RedisRegistry

from .conftest import ServerProcess
from .netns import Network, several_hosts
from .nginx import (
    Nginx,
    devices_through,
    several_processes,
    sockets_per_process,
    start_servers,
    until,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not several_processes(), reason="hosts share state only with PostgreSQL and Redis"
    ),
    # The hosts reach Redis through one proxy each on their bridge; a cluster's nodes send
    # clients to the addresses they announce (127.0.0.1), which no namespace can reach.
    pytest.mark.skipif(
        settings.REDIS_CLUSTER,
        reason="the namespaces reach one Redis through a proxy, not a cluster's nodes",
    ),
]
TTL = 2.0
HEARTBEAT = 0.3
# A message between two people on healthy hosts arrives within this, cut or no cut.
HEALTHY_DELIVERY_SECONDS = 3.0


def _through(url: str, gateway: str, port: int) -> str:
    """``url`` (PostgreSQL or Redis, on this machine) reached at ``gateway:port``."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{gateway}:{port}" if credentials else f"{gateway}:{port}"
    return parts._replace(netloc=netloc).geturl()


@contextlib.contextmanager
def hosts_behind_nginx(
    network: Network, env: dict[str, str], workdir: Path
) -> Iterator[tuple[Nginx, list[ServerProcess]]]:
    started: list[OwnedProcess] = []
    with ProxyHub() as hub:
        database, redis = urlsplit(env["DATABASE_URL"]), urlsplit(env["REDIS_URL"])
        to_database = hub.add(database.port or 5432, listen_host=network.gateway)
        to_redis = hub.add(redis.port or 6379, listen_host=network.gateway)
        # A host lost mid-transaction would hold its locks until PostgreSQL noticed; the
        # proxy keeps its side of the connection open, so end such transactions after 5 s
        # (what docs/operations.md recommends for any deployment).
        database_url = _through(env["DATABASE_URL"], network.gateway, to_database.port)
        database_url += "?options=-c%20idle_in_transaction_session_timeout%3D5s"
        env = {
            **env,
            "DATABASE_URL": database_url,
            "REDIS_URL": _through(env["REDIS_URL"], network.gateway, to_redis.port),
            "ALLOWED_HOSTS": ",".join(["127.0.0.1", *(h.address for h in network.hosts)]),
        }
        if env.get("CELERY_BROKER_URL"):
            broker = env["CELERY_BROKER_URL"]
            env["CELERY_BROKER_URL"] = _through(broker, network.gateway, to_redis.port)
        try:
            servers = [
                ServerProcess(env, workdir / f"host{i}.log", host=h.address, wrapper=h.wrapper)
                for i, h in enumerate(network.hosts)
            ]
            started.extend(servers)
            start_servers(servers)
            nginx = Nginx(workdir / "nginx", [server.address for server in servers])
            started.append(nginx)
            nginx.start()
            yield nginx, servers
        finally:
            # Servers at once (the lost one could not drain anyway); nginx with SIGTERM,
            # so that its workers exit with it.
            for process in reversed(started):
                if isinstance(process, Nginx):
                    process.stop()
                else:
                    process.kill()


def _best_host(nginx: Nginx, token: str) -> str | None:
    response = httpx.get(
        nginx.url + "/api/v1/chat-servers/best",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    host: str | None = urlsplit(response.json()["ws_url"]).hostname
    return host


def _slow_healthy_deliveries(workload: Workload, after: float, healthy: set[str]) -> list[str]:
    """Messages first sent after ``after`` by a device in ``healthy`` that reached a member
    device in ``healthy`` later than HEALTHY_DELIVERY_SECONDS (or never)."""
    ledger = workload.ledger
    sent_at: dict[tuple[str, str], float] = {}
    for attempt in ledger.attempts:
        if attempt.device in healthy:
            sent_at.setdefault((attempt.device, attempt.client_msg_id), attempt.at)
    delivered = {(e.device, e.message_id): e.at for e in ledger.events if e.message_id}
    slow = []
    for message_id, ack in ledger.acknowledged().items():
        started = sent_at.get((ack.device, ack.client_msg_id))
        if started is None or started < after:
            continue
        members = ledger.members[ack.conversation_id]
        for device in healthy - {ack.device}:
            if ledger.devices[device] not in members:
                continue
            arrived = delivered.get((device, message_id))
            if arrived is None or arrived - started > HEALTHY_DELIVERY_SECONDS:
                slow.append(f"{message_id} to {device}: {arrived and arrived - started}")
    return slow


@pytest.mark.timeout(240)
async def test_a_host_cut_off_the_network(server_env: dict[str, str], tmp_path: Path) -> None:
    prefix = f"e2e-hosts-{secrets.token_hex(4)}"
    server_env.update(
        CHAT_SERVER_REGISTRY_PREFIX=prefix,
        CHAT_SERVER_HEARTBEAT=str(HEARTBEAT),
        CHAT_SERVER_TTL=str(TTL),
        NUM_PROXIES="1",
        THROTTLE_SIGNUP="1000/hour",
        THROTTLE_LOGIN="1000/min",
    )
    registry = RedisRegistry(prefix)
    with (
        several_hosts(3) as network,
        hosts_behind_nginx(network, server_env, tmp_path) as (nginx, servers),
    ):
        workload = devices_through(nginx.url, nginx.ws_url, group_size=6, seed=11)
        await workload.start()
        try:
            # Two devices on each host (least_conn), chatting across hosts.
            await until(
                lambda: sorted(sockets_per_process(registry).values()) == [2, 2, 2],
                "two devices on each host",
            )
            await until(lambda: len(workload.ledger.acks) >= 10, "messages acknowledged")
            # Quiet at the moment of the cut: a send the lost host had in flight would hold
            # its row locks in PostgreSQL until the server noticed the dead connection
            # (docs/operations.md, "Several machines"), and stall the others' sends to the
            # same people for that long.
            assert await workload.settle(30), "everything delivered before the cut"
            lost, lost_pid = network.hosts[1], servers[1].pid
            lost.cut()
            cut_at = time.monotonic()
            # Everybody writes to each of their conversations at once.
            written = [
                client.send(conversation_id)
                for client in workload.clients
                for conversation_id in client.account.conversation_ids
            ]

            # The registry forgets the lost host within its time to live...
            await until(
                lambda: lost_pid not in sockets_per_process(registry),
                "the lost host's record expired",
                timeout=TTL + 10,
            )
            assert time.monotonic() - cut_at <= TTL + 2 * HEARTBEAT + 1.5
            # ... so new clients are never sent there, though it looks the least loaded.
            token = workload.accounts[0].token
            assert all(_best_host(nginx, token) != lost.address for _ in range(10))

            # Its two devices come back through nginx, on the two other hosts.
            await until(
                lambda: (
                    workload.all_live()
                    and lost_pid not in sockets_per_process(registry)
                    and sum(sockets_per_process(registry).values()) == 6
                ),
                "every device live again on the two other hosts",
            )
            assert await workload.settle(30), "every acknowledged message delivered"
            history = await workload.read_history()
        finally:
            await workload.stop()

    ledger = workload.ledger
    dropped = {
        change.device
        for change in ledger.timeline
        if not change.live and cut_at <= change.at < ledger.stopped_at
    }
    assert len(dropped) == 2, f"only the lost host's devices reconnect: {dropped}"
    healthy = set(ledger.devices) - dropped
    # People on the other hosts chatted on as if nothing happened.
    assert _slow_healthy_deliveries(workload, cut_at, healthy) == []
    result = check(ledger, history=history)
    assert result.ok, result.totals()
    assert result.totals()["acknowledged"] >= 10 + len(written)
