"""End to end: a recipient that stops reading costs the server bounded memory and nobody else
any delay (issue 11, item 10).

The slow recipient is a raw TCP socket with a tiny receive buffer that speaks WebSocket
through websockets' sans-I/O client, syncs once and then never reads again, as a phone whose
app froze with its connection open.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close
from websockets.uri import parse_uri

from .conftest import ServerProcess
from .test_live_server import Client, sign_up

pytestmark = pytest.mark.e2e

MESSAGES = 150
# Below the per-connection frame rate limit (30 frames/s), as a fast human-driven client.
SENDS_PER_SECOND = 20
TEXT = "x" * 90_000  # near MAX_MESSAGE_LENGTH: 150 of them are ~13.5 MB per recipient
# Interpreter, allocator and the healthy clients' traffic account for some growth; a server
# that buffers for the slow reader grows by the ~13.5 MB it could not send.
RSS_GROWTH_BOUND = 6 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class FrozenReader:
    """A WebSocket client that reads only while told to."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.protocol = ClientProtocol(parse_uri(server.ws_url), max_size=None)
        self.sock = socket.socket()
        # Set before connecting, so that the advertised TCP window stays small.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.settimeout(10)
        request = self.protocol.connect()
        request.headers["Authorization"] = f"Bearer {token}"
        self.protocol.send_request(request)
        self._flush()

    def _flush(self) -> None:
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    def send(self, frame: dict[str, object]) -> None:
        self.protocol.send_text(orjson.dumps(frame))
        self._flush()

    def read_until(self, frame_type: str) -> None:
        while True:
            for event in self.protocol.events_received():
                data = getattr(event, "data", None)
                if data is not None and orjson.loads(data).get("type") == frame_type:
                    return
            self.protocol.receive_data(self.sock.recv(65536))

    def read_to_end(self) -> Close | None:
        """Read everything the server still sends; the close frame it ended with, if any."""
        while not self.protocol.close_rcvd:
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                break
            if not data:
                self.protocol.receive_eof()
                break
            self.protocol.receive_data(data)
            self.protocol.events_received()
        return self.protocol.close_rcvd


async def test_a_reader_that_stops_reading_is_bounded_and_delays_nobody(
    servers: Callable[[int], list[ServerProcess]], server_env: dict[str, str]
) -> None:
    # Live events carry the whole text, so each one costs the slow reader ~90 kB.
    server_env["LIVE_EVENT_FULL_TEXT_LIMIT"] = "100000"
    (server,) = servers(1)
    assert server.process is not None
    _sender_id, sender_token = sign_up(server)
    slow_id, slow_token = sign_up(server)
    healthy_id, healthy_token = sign_up(server)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            server.base_url + "/api/v1/conversations",
            json={"kind": "group", "name": "flood", "member_ids": [slow_id, healthy_id]},
            headers={"Authorization": f"Bearer {sender_token}"},
        )
    assert response.status_code == 201, response.text
    conversation_id = response.json()["id"]

    sender, healthy = Client(server, sender_token), Client(server, healthy_token)
    await sender.connect()
    await healthy.connect()
    slow = FrozenReader(server, slow_token)
    slow.read_until("hello")
    slow.send({"type": "sync", "after": 0})
    slow.read_until("sync.page")  # live from here on; it never reads again

    # Warm up the server's buffers with the same traffic, then measure from there.
    await sender.send(conversation_id, TEXT, "warm")
    await healthy.receive_live(1)
    baseline = rss_bytes(server.process.pid)
    peak = baseline

    received = asyncio.create_task(healthy.receive_live(MESSAGES, timeout=30))
    slowest_sent = 0.0
    pace = asyncio.get_running_loop().time()
    for index in range(MESSAGES):
        started = time.monotonic()
        sent = await sender.send(conversation_id, TEXT, f"m{index}")
        slowest_sent = max(slowest_sent, time.monotonic() - started)
        assert sent["duplicate"] is False
        peak = max(peak, rss_bytes(server.process.pid))
        pace += 1 / SENDS_PER_SECOND
        await asyncio.sleep(max(0.0, pace - asyncio.get_running_loop().time()))
    await received
    peak = max(peak, rss_bytes(server.process.pid))

    assert len(healthy.messages) == MESSAGES + 1
    assert slowest_sent < 2.0, f"a sent took {slowest_sent:.2f} s"
    assert peak - baseline < RSS_GROWTH_BOUND, (
        f"server RSS grew by {(peak - baseline) / 2**20:.1f} MiB for a reader that stopped"
    )
    # Reading again, the frozen client finds its connection closed as too slow (it would
    # catch up with sync on a new connection: the events are in its sync queue).
    close = await asyncio.to_thread(slow.read_to_end)
    assert close is not None
    assert close.code == 4009
    await sender.close()
    await healthy.close()
