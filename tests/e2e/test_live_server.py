"""End to end: real server processes, real HTTP and WebSocket clients, nothing in-process.

On the production configuration the users sit on different server processes, so delivery
crosses processes through Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import websockets

from .conftest import ServerProcess

pytestmark = pytest.mark.e2e
_names = itertools.count(1)


def sign_up(server: ServerProcess) -> tuple[int, str]:
    name = f"e2e{next(_names)}"
    response = httpx.post(
        server.base_url + "/api/v1/auth/signup",
        json={"username": name, "password": "a long enough passphrase", "device_name": "e2e"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["user"]["id"], body["token"]


def start_direct(server: ServerProcess, token: str, other_id: int) -> int:
    response = httpx.post(
        server.base_url + "/api/v1/conversations",
        json={"kind": "direct", "user_id": other_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    conversation_id: int = response.json()["id"]
    return conversation_id


class Client:
    def __init__(self, server: ServerProcess, token: str) -> None:
        self.server = server
        self.token = token
        self.cursor = 0
        self.socket: Any = None
        self.messages: list[int] = []

    async def connect(self, server: ServerProcess | None = None) -> None:
        self.server = server or self.server
        self.socket = await websockets.connect(
            self.server.ws_url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            max_size=2**21,
        )
        hello = await self.receive()
        assert hello["type"] == "hello"
        while True:
            await self.socket.send(orjson.dumps({"type": "sync", "after": self.cursor}).decode())
            page = await self.receive()
            assert page["type"] == "sync.page"
            for event in page["events"]:
                self.take(event)
            if not page["has_more"]:
                break

    def take(self, event: dict[str, Any]) -> None:
        assert event["seq"] == self.cursor + 1, f"gap or duplicate at {self.cursor}: {event}"
        self.cursor = event["seq"]
        if event["type"] == "message.new":
            self.messages.append(event["message"]["id"])

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(self.socket.recv(), timeout))
        return frame

    async def receive_live(self, count: int, timeout: float = 20) -> None:
        while count:
            frame = await self.receive(timeout)
            if "seq" in frame and not frame.get("duplicate"):
                self.take(frame)
                count -= frame["type"] == "message.new"

    async def send(self, conversation_id: int, text: str, client_msg_id: str) -> dict[str, Any]:
        await self.socket.send(
            orjson.dumps(
                {
                    "type": "send",
                    "conversation_id": conversation_id,
                    "client_msg_id": client_msg_id,
                    "text": text,
                }
            ).decode()
        )
        while True:
            frame = await self.receive()
            if frame["type"] == "sent":
                if not frame["duplicate"]:
                    self.take(frame)
                return frame
            if "seq" in frame:
                self.take(frame)

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


async def test_two_users_chat_across_server_processes(
    servers: Callable[[int], list[ServerProcess]],
) -> None:
    # Several processes need Redis between them; embedded, both users share one process.
    started = servers(2 if os.environ.get("REDIS_URL") else 1)
    first, second = started[0], started[-1]
    _alice_id, alice_token = sign_up(first)
    bob_id, bob_token = sign_up(second)
    conversation_id = start_direct(first, alice_token, bob_id)
    alice, bob = Client(first, alice_token), Client(second, bob_token)
    await alice.connect()
    await bob.connect()

    acks = [await alice.send(conversation_id, f"hello {i}", f"a{i}") for i in range(20)]
    await bob.receive_live(20)
    assert bob.messages == [ack["message_id"] for ack in acks]
    await alice.close()
    await bob.close()


async def test_acknowledged_messages_survive_a_killed_server(
    servers: Callable[[int], list[ServerProcess]],
) -> None:
    (server,) = servers(1)
    _alice_id, alice_token = sign_up(server)
    bob_id, bob_token = sign_up(server)
    conversation_id = start_direct(server, alice_token, bob_id)
    alice, bob = Client(server, alice_token), Client(server, bob_token)
    await alice.connect()
    await bob.connect()
    await bob.close()  # bob is offline while alice writes

    acked = [
        (await alice.send(conversation_id, f"before crash {i}", f"k{i}"))["message_id"]
        for i in range(50)
    ]
    server.kill()
    server.start(migrate=False)

    # Alice resends the last message as a client would after losing the connection
    # mid-send: it is acknowledged once, with the original id.
    await alice.connect()
    retry = await alice.send(conversation_id, "before crash 49", "k49")
    assert retry["duplicate"] is True
    assert retry["message_id"] == acked[-1]

    await bob.connect()
    assert bob.messages == acked
    await alice.close()
    await bob.close()
