"""No client input moves the server past the events still to come (issue 11, item 8), and
every ``send`` gets a reply in every connection state (item 11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from accounts.models import User
from chat.services import sync
from chat.store import get_message_store

from .conftest import direct

pytestmark = pytest.mark.django_db(transaction=True)

UsersFactory = Callable[[int], list[User]]
FAR_BEYOND = 10**12


async def test_sync_after_beyond_the_newest_seq_still_gets_the_next_message_live(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1, b1 = await ws_devices(alice, "a1"), await ws_devices(bob, "b1")
    await a1.connect()
    await a1.send_text(conversation_id, "before")
    await b1.connect(sync=False)

    await b1.send({"type": "sync", "after": FAR_BEYOND, "ref": "far"})
    page = await b1.receive_type("sync.page")
    assert page["last_seq"] == b1.hello["last_seq"]
    assert page["events"] == []
    b1.cursor = page["last_seq"]  # what a client takes from the page

    sent = await a1.send_text(conversation_id, "after the far sync")
    live = await b1.receive_type("message.new")
    assert live["message"]["id"] == sent["message_id"]


async def test_ack_beyond_the_newest_seq_does_not_skip_later_events(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1, b1 = await ws_devices(alice, "a1"), await ws_devices(bob, "b1")
    await a1.connect()
    await b1.connect()
    await a1.send_text(conversation_id, "one")
    await b1.receive_type("message.new")

    await b1.send({"type": "ack", "seq": FAR_BEYOND})
    # Without ``after`` the server syncs from the acknowledged cursor.
    await b1.send({"type": "sync", "ref": "default"})
    page = await b1.receive_type("sync.page")
    assert page["last_seq"] == b1.cursor

    sent = await a1.send_text(conversation_id, "two")
    live = await b1.receive_type("message.new")
    assert live["message"]["id"] == sent["message_id"]
    await b1.disconnect()  # stores the acknowledged cursor
    b2 = await ws_devices(bob, "b2")
    await b2.connect(sync=False)
    assert b2.hello["delivered_seq"] <= b2.hello["last_seq"] == b1.cursor


async def test_rest_sync_beyond_the_newest_seq_answers_the_newest(users: UsersFactory) -> None:
    alice, bob = await adb(users)(2)
    await direct(alice, bob)
    newest = await adb(get_message_store().last_seq)(bob.pk)
    page = await adb(sync.sync_page)(bob.pk, after_seq=FAR_BEYOND, limit=10)
    assert (page.last_seq, page.events, page.has_more) == (newest, [], False)


async def test_send_before_sync_gets_a_sent_reply_and_the_event_in_the_sync_page(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1, b1 = await ws_devices(alice, "a1"), await ws_devices(bob, "b1")
    await a1.connect(sync=False)
    await b1.connect()

    sent = await a1.send_text(conversation_id, "before my sync", client_msg_id="early")
    assert sent["ref"] == "early"
    assert sent["duplicate"] is False
    assert "seq" not in sent  # out of the stream: the sync page holds its place
    assert (await b1.receive_type("message.new"))["message"]["id"] == sent["message_id"]

    events = await a1.sync()
    assert [e["message"]["client_msg_id"] for e in events if e["type"] == "message.new"] == [
        "early"
    ]
    later = await a1.send_text(conversation_id, "live now")
    assert later["seq"] == a1.cursor == events[-1]["seq"] + 1
