"""Presence end to end: real ``manage.py serve`` processes and real WebSocket clients.

On the production configuration alice and bob sit on different server processes, and a
server process is killed without closing anything; on the embedded default (one process)
alice's transport goes silent instead. Intervals are shortened through the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import websockets

from tests.e2e.conftest import ServerProcess, server_env, servers

__all__ = ["server_env", "servers"]

pytestmark = pytest.mark.e2e

TIMEOUT, TICK = 2.0, 0.5
PRODUCTION = bool(os.environ.get("REDIS_URL"))


@pytest.fixture
def short_intervals(server_env: dict[str, str]) -> None:
    server_env["PRESENCE_TIMEOUT"] = str(TIMEOUT)
    server_env["PRESENCE_TICK"] = str(TICK)


def _post(server: ServerProcess, path: str, body: dict[str, Any], token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(server.base_url + path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


class Device:
    """A real client: pings every 0.3 s (well inside the timeout) unless told to go silent,
    and collects the presence events it receives."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.server, self.token = server, token
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.silent = False
        self._tasks: list[asyncio.Task[None]] = []
        self.socket: Any = None

    async def open(self, *, watch: bool) -> list[dict[str, Any]]:
        self.socket = await websockets.connect(
            self.server.ws_url, additional_headers={"Authorization": f"Bearer {self.token}"}
        )
        assert orjson.loads(await self.socket.recv())["type"] == "hello"
        # The server answers frames only after the connection's setup, presence included.
        await self.socket.send('{"type":"ping"}')
        assert orjson.loads(await asyncio.wait_for(self.socket.recv(), 5))["type"] == "pong"
        snapshot: list[dict[str, Any]] = []
        if watch:
            await self.socket.send('{"type":"watch"}')
            frame = orjson.loads(await asyncio.wait_for(self.socket.recv(), 5))
            assert frame["type"] == "presence.snapshot", frame
            snapshot = frame["users"]
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._ping())]
        return snapshot

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.socket:
                frame = orjson.loads(raw)
                if frame["type"] == "presence":
                    await self.events.put(frame)

    async def _ping(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                if not self.silent:
                    await self.socket.send('{"type":"ping"}')
                await asyncio.sleep(0.3)

    async def next_event(self, timeout: float) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.socket is not None:
            await self.socket.close()


async def test_presence_transitions_between_processes_and_after_a_dead_peer(
    short_intervals: None, servers: Callable[[int], list[ServerProcess]]
) -> None:
    started = servers(2 if PRODUCTION else 1)
    first, second = started[0], started[-1]
    alice = _post(first, "/api/v1/auth/signup", {"username": "ea", "password": "a long pass 42"})
    bob = _post(first, "/api/v1/auth/signup", {"username": "eb", "password": "a long pass 42"})
    alice_id = alice["user"]["id"]
    _post(first, "/api/v1/contacts", {"user_id": alice_id}, bob["token"])
    login = {"username": "ea", "password": "a long pass 42", "device_name": "laptop"}
    alice_laptop_token = _post(second, "/api/v1/auth/login", login)["token"]

    b1 = Device(second, bob["token"])  # bob on the second process, alice on the first
    assert await b1.open(watch=True) == [
        {"user_id": alice_id, "status": "offline", "last_active_at": None}
    ]
    a1, a2 = Device(first, alice["token"]), Device(second, alice_laptop_token)
    before = time.monotonic()
    await a1.open(watch=False)
    online = await b1.next_event(timeout=1)
    assert (online["user_id"], online["status"]) == (alice_id, "online")
    assert time.monotonic() - before < 1

    await a2.open(watch=False)  # alice's second device, on the other process
    await a1.close()
    with pytest.raises(TimeoutError):
        await b1.next_event(timeout=1)
    await a2.close()
    offline = await b1.next_event(timeout=1)
    assert (offline["status"], offline["user_id"]) == ("offline", alice_id)
    assert offline["last_active_at"] is not None

    # Alice's connection dies without a close: her server process is killed (production)
    # or her transport goes silent (embedded, where bob shares her process).
    a3 = Device(first, alice["token"])
    await a3.open(watch=False)
    assert (await b1.next_event(timeout=1))["status"] == "online"
    before = time.monotonic()
    if PRODUCTION:
        first.kill()
    else:
        a3.silent = True
    offline = await b1.next_event(timeout=TIMEOUT + TICK + 1.5)
    assert offline["status"] == "offline"
    assert time.monotonic() - before <= TIMEOUT + TICK + 1.5
    await b1.close()
    with contextlib.suppress(Exception):
        await a3.close()
