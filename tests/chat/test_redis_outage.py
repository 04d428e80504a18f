"""A process whose Redis subscription drops catches its sockets up when it comes back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from django.conf import settings

from chat import realtime
from chat.services import messages
from tests.redis_servers import kill_clients

from .conftest import direct
from .test_ws_messaging import UsersFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="the subscription exists only with Redis"),
]


async def test_events_published_while_the_subscription_was_down_arrive_after_it_returns(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    bob_phone = await ws_devices(bob, "phone")
    await bob_phone.connect()
    hub = realtime.get_hub()

    # The subscription's connection (on a cluster: on the master of the channel's slot).
    killed = await adb(kill_clients)(f"chat-hub:{hub.process_id}", subscribers_only=True)
    assert killed == 1
    await asyncio.sleep(0.1)  # the reader notices and waits before reconnecting

    sent = await adb(messages.send_message)(
        sender_id=alice.pk, conversation_id=conversation_id, client_msg_id="during", text="hi"
    )

    event = await bob_phone.receive_type("message.new", timeout=10)
    assert event["message"]["id"] == sent.message.id
    assert event["seq"] == bob_phone.cursor
