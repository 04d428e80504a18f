"""The extension point: presence joins chat's protocol and connections from its app
config, and chat works without any extension."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from accounts.models import User
from chat import protocol
from chat.connection import extensions
from presence.frames import PresenceSnapshotFrame, TypingFrame, WatchFrame


def test_presence_registers_its_frames_after_chats() -> None:
    assert protocol.client_frame_types() == (
        "send", "sync", "ack", "read", "edit", "delete", "fetch", "ping", "watch", "typing"
    )  # fmt: skip
    assert isinstance(protocol.parse_client_frame('{"type":"watch"}'), WatchFrame)
    typing_frame = protocol.parse_client_frame('{"type":"typing","conversation_id":3}')
    assert isinstance(typing_frame, TypingFrame)
    assert typing_frame.conversation_id == 3
    assert protocol.server_frame_types()[-3:] == ("presence", "presence.snapshot", "typing")
    assert PresenceSnapshotFrame in protocol.registered_server_frames()
    assert [e.name for e in extensions.registered_extensions()] == ["presence"]


@pytest.mark.django_db(transaction=True)
async def test_without_extensions_a_connection_chats_and_ignores_presence_frames(
    make_user: Callable[..., User], ws_devices: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extensions, "_extensions", {})
    device = await ws_devices(await adb(make_user)())
    await device.connect()

    await device.send({"type": "watch", "ref": "w"})
    await device.send({"type": "ping", "ref": "p"})

    assert await device.receive() == {"type": "pong", "ref": "p"}
    assert await device.nothing_more()
