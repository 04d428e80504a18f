"""A phone that loses its network goes offline for its friends long before the heartbeat
timeout, with no WebSocket protocol pings.

The phone runs in a network namespace of its own (tests/e2e/netns.py) and heartbeats
twice a second; then its link goes down, so nothing reaches the server any more and nothing
is refused: no FIN, no reset, as when a phone enters a tunnel. The server's listening
socket carries TCP keepalive (chatproject/listen.py), which the kernel copies to every
accepted socket: after ``TCP_KEEPALIVE_IDLE`` + ``TCP_KEEPALIVE_INTERVAL`` x
``TCP_KEEPALIVE_COUNT`` seconds without an answer the socket is reset, the server sees the
connection lost, and the friend watching gets ``offline``. The heartbeat timeout is left at
60 s, so only the kernel can make it that fast.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets

from bench.targets import kill_process

from .conftest import ROOT, ServerProcess
from .netns import several_hosts
from .test_live_server import sign_up, start_direct

pytestmark = pytest.mark.e2e

KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 1, 1, 2
HEARTBEAT_TIMEOUT = 60.0
# The kernel's bound, plus the close's presence round trip and the scheduler's slack.
OFFLINE_WITHIN = KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT + 7.0


async def _next_event(socket: Any, kind: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event: dict[str, Any] = orjson.loads(
            await asyncio.wait_for(socket.recv(), max(0.01, deadline - time.monotonic()))
        )
        if event["type"] == kind:
            return event


def _start_phone(wrapper: list[str], ws_url: str, token: str) -> subprocess.Popen[bytes]:
    phone = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "tests.e2e.remote_device", ws_url, token],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert phone.stdout is not None
    line = phone.stdout.readline()  # "ready" once hello arrived; empty if it died
    assert line.strip() == b"ready", f"the phone did not connect (exit {phone.poll()})"
    return phone


@pytest.mark.timeout(120)
async def test_a_phone_whose_network_drops_goes_offline_within_seconds(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    with several_hosts(1) as network:
        server_env.update(
            TCP_KEEPALIVE_IDLE=str(KEEPALIVE_IDLE),
            TCP_KEEPALIVE_INTERVAL=str(KEEPALIVE_INTERVAL),
            TCP_KEEPALIVE_COUNT=str(KEEPALIVE_COUNT),
            WS_PROTOCOL_PING_INTERVAL="0",
            PRESENCE_TIMEOUT=str(HEARTBEAT_TIMEOUT),
            ALLOWED_HOSTS=f"127.0.0.1,{network.gateway}",
        )
        # Listening on the bridge: the phone's namespace reaches it there, the test too.
        server = ServerProcess(server_env, tmp_path / "server.log", host=network.gateway)
        phone: subprocess.Popen[bytes] | None = None
        try:
            server.start()
            _, friend_token = sign_up(server)
            phone_id, phone_token = sign_up(server)
            start_direct(server, friend_token, phone_id)  # partners see each other
            phone = _start_phone(network.hosts[0].wrapper, server.ws_url, phone_token)
            async with websockets.connect(
                server.ws_url, additional_headers={"Authorization": f"Bearer {friend_token}"}
            ) as friend:
                await _next_event(friend, "hello", 10)
                await friend.send('{"type":"watch"}')
                snapshot = await _next_event(friend, "presence.snapshot", 10)
                statuses = {user["user_id"]: user["status"] for user in snapshot["users"]}
                assert statuses.get(phone_id) == "online", snapshot

                network.hosts[0].cut()
                cut_at = time.monotonic()
                while True:
                    event = await _next_event(friend, "presence", OFFLINE_WITHIN)
                    if event["user_id"] == phone_id and event["status"] == "offline":
                        break
                took = time.monotonic() - cut_at
            assert took < OFFLINE_WITHIN < HEARTBEAT_TIMEOUT
        finally:
            if phone is not None:
                kill_process(phone)
            server.stop()
