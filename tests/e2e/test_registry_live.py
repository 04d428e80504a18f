"""End to end: real server processes register themselves (chat/registry/), and
``GET /api/v1/chat-servers/best`` steers new clients to the least loaded live one, never
to a killed one once its record's time to live has run out."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings

from bench.chaos.services import wait_until

from .conftest import ServerProcess
from .test_live_server import Client, sign_up

pytestmark = pytest.mark.e2e
TTL = 2.0
HEARTBEAT = 0.3


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
    server_env.update(
        CHAT_SERVER_REGISTRY_PREFIX=f"e2e-{secrets.token_hex(4)}",
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
    # The second is killed: within its TTL (and one heartbeat) it is never named again.
    second.kill()
    killed_at = time.monotonic()
    wait_until(lambda: port_of(best(first, token)["ws_url"]) == first.port, "steered back")
    assert time.monotonic() - killed_at <= TTL + 2 * HEARTBEAT + 1.0
    for _ in range(20):
        assert port_of(best(first, token)["ws_url"]) == first.port
    for client in clients:
        await client.socket.close()
