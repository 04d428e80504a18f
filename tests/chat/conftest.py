"""WebSocket test clients that talk to the real ASGI application (middleware, routing,
consumer, hub) through Channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts import services as account_services
from accounts.models import User
from chat import realtime
from chat.services import conversations
from chatproject.asgi import application

_client_ids = itertools.count(1)


class WsDevice:
    """One connected device: frames in, frames out, with the cursor a real client keeps."""

    def __init__(self, user: User, token: str, device_id: int) -> None:
        self.user = user
        self.token = token
        self.device_id = device_id
        self.cursor = 0
        self.resets = 0  # reset sync pages received (cursor older than the retained window)
        self.communicator: WebsocketCommunicator | None = None
        self.hello: dict[str, Any] = {}

    async def connect(self, *, sync: bool = True) -> list[dict[str, Any]]:
        """Connect, read hello, and (optionally) sync from the cursor until live. Returns the
        events received while syncing."""
        self.communicator = WebsocketCommunicator(
            application, "/ws/", headers=[(b"authorization", f"Bearer {self.token}".encode())]
        )
        connected, _ = await self.communicator.connect()
        assert connected
        self.hello = await self.receive()
        assert self.hello["type"] == "hello", self.hello
        return await self.sync() if sync else []

    async def sync(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            await self.send({"type": "sync", "after": self.cursor, "ref": "s"})
            page = await self.receive_type("sync.page")
            events.extend(page["events"])
            for event in page["events"]:
                self.cursor = event["seq"]
            if page["reset"]:
                # Older than the retained window: a client reloads over REST, then goes on
                # from the newest seq (docs/protocol.md).
                assert page["events"] == [], page
                assert not page["has_more"], page
                self.resets += 1
                self.cursor = page["last_seq"]
            if not page["has_more"]:
                return events

    async def send(self, frame: dict[str, Any] | str) -> None:
        assert self.communicator is not None
        await self.communicator.send_to(
            text_data=frame if isinstance(frame, str) else orjson.dumps(frame).decode()
        )

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        assert self.communicator is not None
        frame: dict[str, Any] = orjson.loads(await self.communicator.receive_from(timeout=timeout))
        # A duplicate "sent" repeats an old position in the stream; everything else with a
        # seq must be exactly the next one.
        if "seq" in frame and not frame.get("duplicate"):
            assert frame["seq"] == self.cursor + 1, (
                f"gap or duplicate: cursor {self.cursor}, got {frame}"
            )
            self.cursor = frame["seq"]
        return frame

    async def receive_type(self, frame_type: str, timeout: float = 5) -> dict[str, Any]:
        """The next frame of ``frame_type``; fails on anything else except receipts."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == frame_type:
                return frame
            assert frame["type"] == "receipt", f"expected {frame_type}, got {frame}"

    async def send_text(
        self, conversation_id: int, text: str, *, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        client_msg_id = client_msg_id or f"c{next(_client_ids)}"
        await self.send(
            {
                "type": "send",
                "conversation_id": conversation_id,
                "client_msg_id": client_msg_id,
                "text": text,
                "ref": client_msg_id,
            }
        )
        return await self.receive_type("sent")

    async def nothing_more(self, timeout: float = 0.3) -> bool:
        assert self.communicator is not None
        quiet: bool = await self.communicator.receive_nothing(timeout=timeout)
        return quiet

    async def disconnect(self) -> None:
        if self.communicator is not None:
            await self.communicator.disconnect()
            self.communicator = None


async def direct(a: User, b: User) -> int:
    """The direct conversation of ``a`` and ``b`` (created on first use)."""
    conversation, _ = await database_sync_to_async(conversations.get_or_create_direct)(a, b.pk)
    conversation_id: int = conversation.pk
    return conversation_id


@pytest.fixture
async def ws_devices() -> AsyncIterator[Callable[..., Any]]:
    created: list[WsDevice] = []

    def _issue(user: User, name: str) -> tuple[str, int]:
        issued = account_services.issue_device_token(user, device_name=name, platform="android")
        return issued.token, issued.device.pk

    async def make(user: User, name: str = "phone") -> WsDevice:
        token, device_id = await database_sync_to_async(_issue)(user, name)
        device = WsDevice(user, token, device_id)
        created.append(device)
        return device

    yield make
    for device in created:
        await device.disconnect()
    for hub in realtime.hub.local_hubs():
        if hub.loop is asyncio.get_running_loop():
            await hub.stop()


@pytest.fixture
def users(make_user: Callable[..., User]) -> Callable[[int], list[User]]:
    def make(count: int) -> list[User]:
        return [make_user() for _ in range(count)]

    return make
