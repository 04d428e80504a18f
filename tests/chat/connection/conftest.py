"""Helpers for the connection parts' tests: real services, frames captured from the part."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from channels.db import database_sync_to_async as adb

from accounts import services as account_services
from accounts.models import User
from chat.services import conversations
from chat.services import messages as message_service


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Until ``condition()`` holds (polled on the loop), or fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Written:
    """A fake ``write``/``send_frame``: what a part wrote to the socket, decoded."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.raw.append(data)

    def send_frame(self, frame: Any) -> None:
        self.raw.append(orjson.dumps(frame))

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [orjson.loads(data) for data in self.raw]

    @property
    def seqs(self) -> list[int]:
        return [frame["seq"] for frame in self.frames]


async def device_of(user: User) -> int:
    issued = await adb(account_services.issue_device_token)(
        user, device_name="phone", platform="android"
    )
    device_id: int = issued.device.pk
    return device_id


async def messages_to(receiver: User, sender: User, count: int) -> list[int]:
    """``count`` messages from ``sender`` in their direct conversation; their ids."""
    conversation, _ = await adb(conversations.get_or_create_direct)(sender, receiver.pk)
    ids = []
    for index in range(count):
        result = await adb(message_service.send_message)(
            sender_id=sender.pk,
            conversation_id=conversation.pk,
            client_msg_id=f"m{index}",
            text=f"message {index}",
        )
        ids.append(result.message.id)
    return ids
