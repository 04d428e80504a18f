"""Presence tests: WebSocket devices from tests/chat, a clean presence state per test, and
short intervals so that timeouts are observable in a test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from accounts.models import Contact, User
from presence.backends import get_backend
from tests.chat.conftest import WsDevice, users, ws_devices

__all__ = ["WsDevice", "users", "ws_devices"]


@pytest.fixture(autouse=True)
def _fresh_presence(settings: Any) -> None:
    # User ids are reused across tests on some databases: no lease may survive a test.
    get_backend().reset()
    settings.PRESENCE_TIMEOUT = 60.0
    settings.PRESENCE_TICK = 10.0


async def add_contact(owner: User, contact: User) -> None:
    await adb(Contact.objects.create)(owner=owner, contact=contact)


async def next_presence(device: WsDevice, timeout: float = 5) -> dict[str, Any]:
    """The next frame, which must be a presence event."""
    frame = await device.receive(timeout)
    assert frame["type"] == "presence", frame
    return frame


async def watching(device: WsDevice) -> list[dict[str, Any]]:
    """Connect (hello and sync) and subscribe to presence; returns the snapshot's users."""
    await device.connect()
    await device.send({"type": "watch", "ref": "w"})
    snapshot = await device.receive()
    assert snapshot["type"] == "presence.snapshot", snapshot
    assert snapshot["ref"] == "w"
    users: list[dict[str, Any]] = snapshot["users"]
    return users


UsersFactory = Callable[[int], list[User]]


async def presence_while_pinging(device: WsDevice, timeout: float) -> dict[str, Any]:
    """Keep ``device`` heartbeating (as a real client does) until a presence event comes."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        await device.send({"type": "ping"})
        frame = await device.receive()
        if frame["type"] == "presence":
            assert (await device.receive())["type"] == "pong"
            return frame
        assert frame["type"] == "pong", frame
        await asyncio.sleep(0.1)
    raise AssertionError(f"no presence event within {timeout} s")


class Recorder:
    """SQL statements run on any thread, and realtime publishes, while recording."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.published: list[tuple[list[int], Any]] = []

    def writes(self) -> list[str]:
        return [
            s
            for s in self.statements
            if s.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")
        ]

    def clear(self) -> None:
        self.statements.clear()
        self.published.clear()


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    from django.db.backends.utils import CursorWrapper

    from chat import realtime

    record = Recorder()
    execute, executemany = CursorWrapper.execute, CursorWrapper.executemany

    def counted_execute(self: CursorWrapper, sql: str, params: Any = None) -> Any:
        record.statements.append(sql)
        return execute(self, sql, params)

    def counted_executemany(self: CursorWrapper, sql: str, params: Any) -> Any:
        record.statements.append(sql)
        return executemany(self, sql, params)

    publish, apublish = realtime.publish, realtime.apublish

    def recorded_publish(user_ids: Any, frame: Any, **kwargs: Any) -> Any:
        record.published.append((list(user_ids), frame))
        return publish(user_ids, frame, **kwargs)

    async def recorded_apublish(user_ids: Any, frame: Any, **kwargs: Any) -> Any:
        record.published.append((list(user_ids), frame))
        return await apublish(user_ids, frame, **kwargs)

    publish_many = realtime.publish_many

    def recorded_publish_many(events: Any) -> Any:
        record.published.extend((list(e.user_ids), e.frame) for e in events)
        return publish_many(events)

    monkeypatch.setattr(realtime, "publish_many", recorded_publish_many)
    monkeypatch.setattr(CursorWrapper, "execute", counted_execute)
    monkeypatch.setattr(CursorWrapper, "executemany", counted_executemany)
    monkeypatch.setattr(realtime, "publish", recorded_publish)
    monkeypatch.setattr(realtime, "apublish", recorded_apublish)
    return record
