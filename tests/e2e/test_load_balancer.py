"""End to end through nginx (deploy/nginx/chat.conf, rendered) in front of real server
processes: what clients see when they only know the balancer's address."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest

from bench.chaos.checker import check
from bench.chaos.services import wait_until
from chat.registry.redis import RedisRegistry

from .conftest import fresh_server_env
from .nginx import (  # noqa: F401  (load_balanced: a fixture)
    Balanced,
    balanced,
    devices_through,
    load_balanced,
    pid_of,
    several_processes,
    sockets_per_process,
    until,
)
from .test_live_server import sign_up, start_direct

pytestmark = pytest.mark.e2e
HEARTBEAT = 0.3
# The shared cluster's processes are in these zones; its nginx tells every client "zone-b".
ZONES = ("zone-a", "zone-b", "zone-a")
BALANCER_ZONE = "zone-b"


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Balanced]:
    """One cluster behind nginx for the tests that change nothing in it."""
    workdir = tmp_path_factory.mktemp("balanced")
    with fresh_server_env(workdir / "data") as env:
        env.update(
            THROTTLE_LOGIN="2/min",
            CHAT_SERVER_REGISTRY_PREFIX=f"e2e-lb-{secrets.token_hex(4)}",
            CHAT_SERVER_HEARTBEAT=str(HEARTBEAT),
        )
        server_envs = [{"CHAT_SERVER_ZONE": zone} for zone in ZONES]
        with balanced(env, workdir, zone=BALANCER_ZONE, server_envs=server_envs) as cluster:
            yield cluster


def test_health_endpoints_answer_through_the_balancer(front: Balanced) -> None:
    alive = httpx.get(front.url + "/healthz")
    assert alive.status_code == 200
    assert alive.json() == {"status": "alive"}
    ready = httpx.get(front.url + "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert ready.headers["Cache-Control"].startswith("max-age=0")


def _loopback_addresses(count: int) -> list[str]:
    """Distinct client addresses for this run (all of 127.0.0.0/8 is this machine), fresh
    each run: throttle counters outlive a test in the shared Redis."""
    base = f"127.{random.randrange(1, 255)}.{random.randrange(0, 256)}"
    return [f"{base}.{host}" for host in range(2, 2 + count)]


def test_throttling_counts_the_address_nginx_saw(front: Balanced) -> None:
    """NUM_PROXIES=1 and THROTTLE_LOGIN=2/min: failed log-ins are counted per address."""
    first, second = _loopback_addresses(2)

    def failed_log_in(source: str, forwarded_for: str | None = None) -> int:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport, timeout=30) as client:
            response = client.post(
                front.url + "/api/v1/auth/login",
                # A new name each time: only the per-address limit applies.
                json={"username": f"nobody{secrets.token_hex(4)}", "password": "wrong guess"},
                headers=headers,
            )
        return response.status_code

    assert [failed_log_in(first), failed_log_in(first)] == [401, 401]
    assert failed_log_in(first) == 429
    # Whatever the client writes in X-Forwarded-For itself, nginx appends the address it
    # saw and the server (NUM_PROXIES=1) reads only that last one.
    assert failed_log_in(first, forwarded_for="203.0.113.9") == 429
    assert failed_log_in(first, forwarded_for=f"{second}, 198.51.100.4") == 429
    # Another client address has its own count.
    assert [failed_log_in(second), failed_log_in(second)] == [401, 401]
    assert failed_log_in(second) == 429


def test_the_longest_message_fits_through_the_balancer(front: Balanced) -> None:
    """99,999 four-byte characters: ~400 kB of JSON in one REST send."""
    (server, *_) = front.servers
    _, token = sign_up(server)
    other_id, _ = sign_up(server)
    conversation_id = start_direct(server, token, other_id)
    text = "😀" * 99_999
    sent = httpx.post(
        f"{front.url}/api/v1/conversations/{conversation_id}/messages",
        content=orjson.dumps({"client_msg_id": "long", "text": text}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert sent.status_code == 201, sent.text[:500]
    read = httpx.get(
        f"{front.url}/api/v1/messages/{sent.json()['message']['id']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert read.status_code == 200
    assert read.json()["text"] == text


@pytest.mark.skipif(not several_processes(), reason="one process embedded: no zone to prefer")
def test_the_balancer_tells_the_server_the_client_zone(front: Balanced) -> None:
    """GET /api/v1/chat-servers/best prefers the zone nginx names (X-Client-Zone), and a
    client cannot name another one itself."""
    _, token = sign_up(front.servers[0])

    def best(base_url: str, **headers: str) -> dict[str, str | None]:
        response = httpx.get(
            base_url + "/api/v1/chat-servers/best",
            headers={"Authorization": f"Bearer {token}", **headers},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        answer: dict[str, str | None] = response.json()
        return answer

    in_zone = front.servers[ZONES.index(BALANCER_ZONE)]
    wait_until(lambda: best(front.url)["zone"] == BALANCER_ZONE, "the zone's process registered")
    answer = best(front.url, **{"X-Client-Zone": "zone-a"})
    assert (answer["zone"], pid_of(answer["server_id"])) == (BALANCER_ZONE, in_zone.pid)
    # Every process advertises the balancer's URL: clients never bypass nginx.
    assert answer["ws_url"] == front.ws_url
    # Straight to a process (which clients must not reach), the client's header would count.
    wait_until(
        lambda: best(in_zone.base_url, **{"X-Client-Zone": "zone-a"})["zone"] == "zone-a",
        "a zone-a process named to a client naming zone-a",
    )


@pytest.mark.skipif(
    not several_processes(), reason="processes share state only with PostgreSQL and Redis"
)
async def test_clients_of_a_killed_process_resume_through_the_balancer(
    load_balanced: Callable[..., Balanced],  # noqa: F811
    server_env: dict[str, str],
) -> None:
    """Devices know only nginx's address. Spread over three processes, they chat across
    processes; one process is killed (SIGKILL) mid-traffic: its devices reconnect through
    nginx to the other two and sync from their cursors; every acknowledged message reaches
    every member's device exactly once, in order, and is stored once."""
    prefix = f"e2e-lb-{secrets.token_hex(4)}"
    server_env.update(
        CHAT_SERVER_REGISTRY_PREFIX=prefix,
        CHAT_SERVER_HEARTBEAT=str(HEARTBEAT),
        CHAT_SERVER_TTL="3",
    )
    front = load_balanced(3)
    registry = RedisRegistry(prefix)
    workload = devices_through(front.url, front.ws_url, group_size=4, seed=7)
    await workload.start()
    try:
        # least_conn spreads the six sockets over all three processes.
        await until(
            lambda: sorted(sockets_per_process(registry).values()) == [2, 2, 2],
            "two sockets on each process",
        )
        await until(lambda: len(workload.ledger.acks) >= 15, "messages acknowledged")
        before = sockets_per_process(registry)
        victim = front.servers[0]
        victim_pid = victim.pid
        assert before[victim_pid] == 2
        victim.kill()
        killed_at = time.monotonic()

        # Its two devices reconnect, through nginx, to the two remaining processes.
        survivors = {server.pid for server in front.servers if server is not victim}
        await until(
            lambda: (
                set(sockets_per_process(registry)) == survivors
                and sum(sockets_per_process(registry).values()) == 6
                and workload.all_live()
            ),
            "every device live again on the remaining processes",
        )
        dropped = {c.device for c in workload.ledger.timeline if not c.live and c.at >= killed_at}
        assert len(dropped) == 2
        acks_after = len(workload.ledger.acks)
        await until(lambda: len(workload.ledger.acks) >= acks_after + 15, "messages flowing")
        assert await workload.settle(30), "every acknowledged message delivered"
        history = await workload.read_history()
    finally:
        await workload.stop()
    result = check(workload.ledger, history=history)
    assert result.ok, result.totals()
    assert result.totals()["acknowledged"] >= 30
