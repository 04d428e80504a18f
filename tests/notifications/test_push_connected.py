"""The decision for connected devices: a device in the foreground (connected and
acknowledging) is not pushed; one that is connected but stops acknowledging is pushed
after PUSH_UNACKED_DELAY, as is one that disconnects without acknowledging."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from chat import realtime
from tests.chat.conftest import WsDevice

from .conftest import Phone, settle
from .receivers import PushServices

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:Message.token is deprecated"),
]

UNACKED_DELAY = 0.6


@pytest.fixture
async def bob_connected(phone: Callable[..., Phone], push_env: PushServices, settings: Any) -> Any:
    """Alice (REST only) and Bob, whose phone has a Web Push registration and a socket."""
    settings.PUSH_UNACKED_DELAY = UNACKED_DELAY

    def setup() -> tuple[Phone, Phone, int]:
        alice, bob = phone("alice"), phone("bob")
        bob.register_webpush(push_env.new_subscription("bob-web"))
        return alice, bob, alice.direct_with(bob.user)

    alice, bob, conversation_id = await adb(setup)()
    socket = WsDevice(bob.user, bob.token, bob.device_id)
    await socket.connect()
    yield alice, socket, conversation_id
    await socket.disconnect()
    for hub in realtime.hub.local_hubs():
        if hub.loop is asyncio.get_running_loop():
            await hub.stop()


async def test_device_in_the_foreground_is_not_pushed(
    bob_connected: Any, push_env: PushServices
) -> None:
    alice, socket, conversation_id = bob_connected

    for text in ("one", "two"):
        await adb(alice.send)(conversation_id, text)
        frame = await socket.receive_type("message.new")
        await socket.send({"type": "ack", "seq": frame["seq"]})

    await asyncio.sleep(UNACKED_DELAY * 3)
    await adb(settle)()
    assert push_env.pushes() == []


async def test_connected_device_that_does_not_acknowledge_is_pushed_after_the_delay(
    bob_connected: Any, push_env: PushServices
) -> None:
    alice, socket, conversation_id = bob_connected

    await adb(alice.send)(conversation_id, "are you awake?")
    frame = await socket.receive_type("message.new")  # delivered, never acknowledged
    delivered_at = time.monotonic()

    pushes = await asyncio.to_thread(push_env.wait_for, lambda got: len(got) == 1)
    assert pushes[0].at - delivered_at >= UNACKED_DELAY * 0.9
    assert pushes[0].payload["preview"] == "are you awake?"
    assert pushes[0].payload["message_id"] == str(frame["message"]["id"])

    # Acknowledging afterwards and more silence do not push the same message again.
    await socket.send({"type": "ack", "seq": frame["seq"]})
    await asyncio.sleep(UNACKED_DELAY * 2)
    await adb(settle)()
    assert len(push_env.pushes()) == 1


async def test_device_that_disconnects_without_acknowledging_is_pushed(
    bob_connected: Any, push_env: PushServices
) -> None:
    alice, socket, conversation_id = bob_connected

    await adb(alice.send)(conversation_id, "did you get this?")
    await socket.receive_type("message.new")
    await socket.disconnect()  # the app was killed before it acknowledged

    pushes = await asyncio.to_thread(push_env.wait_for, lambda got: len(got) == 1)
    assert pushes[0].payload["preview"] == "did you get this?"
