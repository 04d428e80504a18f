"""One fault-injection cluster for the whole session (starting one is most of the time).

The cluster starts its own PostgreSQL (``initdb``) and ``redis-server``, so it needs their
binaries on the machine: these tests run on the production configuration only, where
those are required anyway. The proxy tests need nothing and run on both. The workload's
end-to-end tests (test_clients.py) run against the live servers tests/e2e starts.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import websockets

from bench.chaos.cluster import Cluster
from bench.chaos.services import wait_until
from tests.e2e.conftest import server_env, servers  # noqa: F401 (fixtures)

PRODUCTION = os.environ.get("CHAT_TEST_CONFIG") == "production"
needs_cluster = pytest.mark.skipif(
    not PRODUCTION, reason="starts PostgreSQL and Redis servers: production configuration only"
)
# Short presence timings, so that a paused server outlasts the timeout in seconds.
PRESENCE_TIMEOUT, PRESENCE_TICK = 3.0, 1.0
_names = itertools.count(1)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with Cluster(
        servers=2,
        presence_timeout=PRESENCE_TIMEOUT,
        presence_tick=PRESENCE_TICK,
        heartbeat_interval=1,
    ) as started:
        yield started


def sign_up(http_url: str, timeout: float = 10.0) -> tuple[int, str]:
    """A new user with one device: (user id, device token)."""
    response = httpx.post(
        http_url + "/api/v1/auth/signup",
        json={
            "username": f"chaos{os.getpid()}x{next(_names)}",
            "password": "a long enough passphrase",
            "device_name": "chaos",
        },
        timeout=timeout,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return int(body["user"]["id"]), str(body["token"])


def signs_up(http_url: str) -> bool:
    """Whether a sign-up (database and Redis on that server's path) succeeds now."""
    try:
        sign_up(http_url, timeout=3)
    except (AssertionError, httpx.HTTPError):
        return False
    return True


def wait_signs_up(http_url: str, timeout: float = 20.0) -> None:
    # Pooled connections broken by a fault fail one request each before being replaced.
    wait_until(lambda: signs_up(http_url), f"no sign-up succeeded on {http_url}", timeout)


async def hello(ws_url: str, token: str) -> dict[str, Any]:
    async with websockets.connect(
        ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10
    ) as socket:
        frame: dict[str, Any] = orjson.loads(await socket.recv())
        return frame
