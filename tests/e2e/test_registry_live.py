"""End to end: real server processes register themselves (chat/registry/), and
``GET /api/v1/chat-servers/best`` steers new clients to the least loaded live one, never
to a killed one once its record's time to live has run out."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings

from bench.chaos.services import wait_until
from chat.registry.redis import RedisRegistry

from .conftest import ServerProcess
from .test_live_server import Client, sign_up

pytestmark = pytest.mark.e2e
TTL = 2.0
HEARTBEAT = 0.3
PASSWORD = "a long enough passphrase"


def best(server: ServerProcess, token: str) -> dict[str, str | None]:
    response = httpx.get(
        server.base_url + "/api/v1/chat-servers/best",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, str | None] = response.json()
    return answer


def port_of(ws_url: str | None) -> int | None:
    return urlsplit(ws_url or "").port


def test_a_serving_process_advertises_its_own_websocket_url(
    servers: Callable[[int], list[ServerProcess]], server_env: dict[str, str]
) -> None:
    server_env["CHAT_SERVER_REGISTRY_PREFIX"] = f"e2e-{secrets.token_hex(4)}"
    (server,) = servers(1)
    _, token = sign_up(server)
    wait_until(lambda: best(server, token)["server_id"] is not None, "the server registered")
    answer = best(server, token)
    assert port_of(answer["ws_url"]) == server.port
    assert urlsplit(answer["ws_url"] or "").path == "/ws/"


@pytest.mark.skipif(not settings.REDIS_URL, reason="processes share the registry in Redis")
async def test_new_clients_go_to_the_least_loaded_live_server_and_never_to_a_killed_one(
    servers: Callable[[int], list[ServerProcess]], server_env: dict[str, str]
) -> None:
    prefix = f"e2e-{secrets.token_hex(4)}"
    server_env.update(
        CHAT_SERVER_REGISTRY_PREFIX=prefix,
        CHAT_SERVER_TTL=str(TTL),
        CHAT_SERVER_HEARTBEAT=str(HEARTBEAT),
    )
    first, second = servers(2)
    _, token = sign_up(first)
    # Three open sockets on the first server: new clients are sent to the second.
    clients = [Client(first, token) for _ in range(3)]
    for client in clients:
        await client.connect()
    wait_until(lambda: port_of(best(first, token)["ws_url"]) == second.port, "steered to 2nd")
    # The second is killed: within its TTL (and one heartbeat) its record is gone, and from
    # then on it is never named. (Until then it may be: its claims are never reset by a
    # heartbeat, but the live server's are, so either may be the least loaded.)
    second.kill()
    killed_at = time.monotonic()
    registry = RedisRegistry(prefix=prefix)

    def second_listed() -> bool:
        return any(port_of(r.ws_url) == second.port for r in registry.live(now=time.time()))

    wait_until(lambda: not second_listed(), "the killed server's record lapsed")
    assert time.monotonic() - killed_at <= TTL + 2 * HEARTBEAT + 1.0
    for _ in range(20):
        assert port_of(best(first, token)["ws_url"]) == first.port
    for client in clients:
        await client.socket.close()


@pytest.mark.skipif(not settings.REDIS_URL, reason="processes share the registry in Redis")
async def test_three_hundred_arrivals_spread_evenly_over_three_servers(
    servers: Callable[[int], list[ServerProcess]], server_env: dict[str, str]
) -> None:
    """Clients arrive faster than the servers' heartbeats: each suggestion claims its
    server, so they spread instead of all going to the one that was emptiest at the last
    beat. Arrivals come through every server in turn (as a load balancer spreads them);
    the first ones are real log-ins (their answer's ``ws_url``), the rest ask
    ``GET /api/v1/chat-servers/best`` as a reconnecting app does (one password hash per
    log-in, 0.5 s here, would make 300 log-ins a minutes-long test; both answers are the
    same choice, tests/chat/test_registry.py)."""
    server_env.update(CHAT_SERVER_REGISTRY_PREFIX=f"e2e-{secrets.token_hex(4)}")
    started = servers(3)
    accounts = [sign_up_named(server) for server in started]
    by_port = {server.port: server for server in started}

    sockets: list[Client] = []
    landed: Counter[int] = Counter()
    async with httpx.AsyncClient(timeout=30) as http:

        async def arrive(arrival: int) -> None:
            via = started[arrival % 3]
            username, token = accounts[arrival % 3]
            # The first arrivals log in; the others ask as a reconnecting app does.
            if arrival < 9:
                answer = await http.post(
                    via.base_url + "/api/v1/auth/login",
                    json={"username": username, "password": PASSWORD, "device_name": "arrival"},
                )
            else:
                answer = await http.get(
                    via.base_url + "/api/v1/chat-servers/best",
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert answer.status_code == 200, answer.text
            port = port_of(answer.json()["ws_url"])
            assert port in by_port, answer.text
            client = Client(by_port[port], token)
            await client.connect()
            sockets.append(client)
            landed[port] += 1

        # Ten at a time: arrivals overlap, as at a deploy or in the morning.
        for batch in range(0, 300, 10):
            await asyncio.gather(*(arrive(arrival) for arrival in range(batch, batch + 10)))
    assert sorted(landed) == sorted(by_port)
    for port, count in landed.items():
        assert 80 <= count <= 120, f"server {port} got {count} of 300: {dict(landed)}"
    await asyncio.gather(*(client.close() for client in sockets))


def sign_up_named(server: ServerProcess) -> tuple[str, str]:
    username = f"arrival{secrets.token_hex(4)}"
    response = httpx.post(
        server.base_url + "/api/v1/auth/signup",
        json={"username": username, "password": PASSWORD, "device_name": "first"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return username, response.json()["token"]
