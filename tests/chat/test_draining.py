"""A draining process (SIGTERM, chatproject/lifecycle.py) sends its devices elsewhere: the
hub's drain answers the frame in hand first, then ``server_draining`` and close 4012; a
device that still gets in is told so in ``hello`` and sent away the same way. The whole
path with a real SIGTERM is tests/e2e/test_draining.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from accounts.models import User
from chat import realtime
from chat.services import conversations
from chatproject import lifecycle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def draining() -> Iterator[Callable[[], None]]:
    yield lifecycle.mark_draining
    lifecycle.reset_for_tests()


async def closed_with(device: Any) -> int:
    code: int = (await device.communicator.receive_output())["code"]
    return code


async def test_a_drain_answers_the_send_in_hand_then_closes_every_device(
    ws_devices: Callable[..., Any],
    users: Callable[[int], list[User]],
    draining: Callable[[], None],
) -> None:
    alice, bob = await adb(users)(2)
    conversation, _ = await adb(conversations.get_or_create_direct)(alice, bob.pk)
    sender, reader = await ws_devices(alice), await ws_devices(bob)
    await sender.connect()
    await reader.connect()
    assert sender.hello["draining"] is False
    await sender.send(
        {"type": "send", "conversation_id": conversation.pk, "client_msg_id": "x", "text": "hi"}
    )
    draining()
    drained = asyncio.create_task(realtime.get_hub().drain())
    assert (await sender.receive_type("sent"))["client_msg_id"] == "x"
    assert (await sender.receive_type("error"))["code"] == "server_draining"
    assert await closed_with(sender) == 4012
    # The idle reader is sent away at once, maybe before the message reached it live.
    while (frame := await reader.receive())["type"] != "error":
        assert frame["type"] in ("message.new", "receipt"), frame
    assert frame["code"] == "server_draining"
    assert await closed_with(reader) == 4012
    await sender.disconnect()  # the clients answer the close: the drain is over
    await reader.disconnect()
    await asyncio.wait_for(drained, 5)
    assert realtime.get_hub().connection_count == 0
    # Where it connects next (here: this process, restarted), it has the message once.
    lifecycle.reset_for_tests()
    caught_up = await reader.connect()
    live = [event for event in caught_up if event["type"] == "message.new"]
    assert [event["message"]["text"] for event in live] in (["hi"], [])
    assert reader.cursor == 2  # member.added, message.new: delivered exactly once overall


async def test_a_device_that_gets_in_while_draining_is_told_and_sent_away(
    ws_devices: Callable[..., Any], users: Callable[[int], list[User]], draining: Callable[[], None]
) -> None:
    (alice,) = await adb(users)(1)
    late = await ws_devices(alice)
    draining()
    await late.connect(sync=False)
    assert late.hello["draining"] is True
    assert (await late.receive_type("error"))["code"] == "server_draining"
    assert await closed_with(late) == 4012
