"""Messaging over the WebSocket, through the real ASGI application."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from accounts.models import User
from chat.services import conversations, messages

from .conftest import direct

pytestmark = pytest.mark.django_db(transaction=True)

UsersFactory = Callable[[int], list[User]]


async def test_one_message_reaches_every_other_device_once_and_is_acked(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1, a2, b1, b2 = [
        await ws_devices(u, n) for u, n in ((alice, "a1"), (alice, "a2"), (bob, "b1"), (bob, "b2"))
    ]
    for device in (a1, a2, b1, b2):
        await device.connect()

    sent = await a1.send_text(conversation_id, "hello bob")
    assert sent["duplicate"] is False
    assert sent["seq"] == a1.cursor

    received = [await d.receive_type("message.new") for d in (a2, b1, b2)]
    assert {r["message"]["id"] for r in received} == {sent["message_id"]}
    assert all(r["message"]["text"] == "hello bob" for r in received)
    for device in (a1, a2, b1, b2):
        assert await device.nothing_more()

    page = await adb(messages.history_page)(
        bob.pk, conversation_id, before=None, after=None, limit=50
    )
    assert [m.id for m in page] == [sent["message_id"]]


async def test_offline_device_catches_up_on_1000_messages_in_order_then_goes_live(
    users: UsersFactory, ws_devices: Any, settings: Any
) -> None:
    settings.SEND_RATE_LIMIT_PER_10S = 100_000
    bob, *senders = await adb(users)(11)
    conversation_ids = [await direct(sender, bob) for sender in senders]
    b1, b2 = await ws_devices(bob, "b1"), await ws_devices(bob, "b2")
    await b1.connect()
    await b2.connect()
    await b1.disconnect()
    await b2.disconnect()

    def send_many() -> list[int]:
        ids = []
        for i in range(1000):
            sender = senders[i % 10]
            result = messages.send_message(
                sender_id=sender.pk,
                conversation_id=conversation_ids[i % 10],
                client_msg_id=f"m{i}",
                text=f"message {i}",
            )
            ids.append(result.message.id)
        return ids

    sent_ids = await adb(send_many)()

    events = await b1.connect()
    got = [e["message"]["id"] for e in events if e["type"] == "message.new"]
    assert got == sent_ids  # all 1,000, in sequence order, none twice (cursor checks gaps)

    live = await adb(messages.send_message)(
        sender_id=senders[0].pk,
        conversation_id=conversation_ids[0],
        client_msg_id="live",
        text="now",
    )
    frame = await b1.receive_type("message.new")
    assert frame["message"]["id"] == live.message.id

    events_b2 = await b2.connect()
    assert [e["message"]["id"] for e in events_b2 if e["type"] == "message.new"] == [
        *sent_ids,
        live.message.id,
    ]


async def test_group_of_100_delivers_to_every_member_and_refuses_the_101st(
    users: UsersFactory, ws_devices: Any
) -> None:
    everyone = await adb(users)(101)
    owner, members, outsider = everyone[0], everyone[1:100], everyone[100]
    group = await adb(conversations.create_group)(
        owner, name="hundred", member_ids_=[m.pk for m in members]
    )
    devices = [await ws_devices(u) for u in everyone[:100]]
    for device in devices:
        await device.connect()

    sent = await devices[0].send_text(group.pk, "to all of you")
    for device in devices[1:]:
        frame = await device.receive_type("message.new")
        assert frame["message"]["id"] == sent["message_id"]

    from chat.services.conversations import GroupFull

    with pytest.raises(GroupFull):
        await adb(conversations.add_members)(owner, group.pk, [outsider.pk])


async def test_longest_allowed_text_round_trips_byte_identical_and_one_more_is_refused(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1, b1 = await ws_devices(alice), await ws_devices(bob)
    await a1.connect()
    await b1.connect()
    text = ("héllo 👋🏽 𝄞 " * 10_000)[:99_999]
    assert len(text) == 99_999

    sent = await a1.send_text(conversation_id, text)
    live = await b1.receive_type("message.new")
    assert live["message"]["truncated"] is True
    assert live["message"]["length"] == 99_999
    await b1.send({"type": "fetch", "message_ids": [sent["message_id"]], "ref": "f"})
    fetched = await b1.receive_type("messages")
    assert fetched["messages"][0]["text"].encode() == text.encode()
    page = await adb(messages.history_page)(
        bob.pk, conversation_id, before=None, after=None, limit=1
    )
    assert page[0].text.encode() == text.encode()

    await a1.send(
        {
            "type": "send",
            "conversation_id": conversation_id,
            "client_msg_id": "big",
            "text": text + "x",
            "ref": "big",
        }
    )
    error = await a1.receive_type("error")
    assert (error["code"], error["ref"]) == ("text_too_long", "big")
    page = await adb(messages.history_page)(
        bob.pk, conversation_id, before=None, after=None, limit=10
    )
    assert len(page) == 1
    assert await b1.nothing_more()


async def test_retry_with_same_client_msg_id_is_acked_with_the_original(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1, b1 = await ws_devices(alice), await ws_devices(bob)
    await a1.connect()
    await b1.connect()
    first = await a1.send_text(conversation_id, "once", client_msg_id="retry-me")
    await a1.disconnect()
    await a1.connect()  # as after a reconnect: the client resends what it has no ack for
    second = await a1.send_text(conversation_id, "once", client_msg_id="retry-me")
    assert second["duplicate"] is True
    assert (second["message_id"], second["seq"]) == (first["message_id"], first["seq"])
    assert (await b1.receive_type("message.new"))["message"]["id"] == first["message_id"]
    assert await b1.nothing_more()
    page = await adb(messages.history_page)(
        bob.pk, conversation_id, before=None, after=None, limit=10
    )
    assert len(page) == 1


async def test_non_members_cannot_send_read_or_receive_and_removed_members_stop_at_once(
    users: UsersFactory, ws_devices: Any
) -> None:
    owner, member, outsider = await adb(users)(3)
    group = await adb(conversations.create_group)(owner, name="g", member_ids_=[member.pk])
    o1, m1, x1 = await ws_devices(owner), await ws_devices(member), await ws_devices(outsider)
    for device in (o1, m1, x1):
        await device.connect()

    await x1.send(
        {
            "type": "send",
            "conversation_id": group.pk,
            "client_msg_id": "x",
            "text": "let me in",
            "ref": "x",
        }
    )
    assert (await x1.receive_type("error"))["code"] == "unknown_conversation"
    await x1.send({"type": "read", "conversation_id": group.pk, "message_id": 1, "ref": "r"})
    assert (await x1.receive_type("error"))["code"] == "unknown_conversation"

    sent = await o1.send_text(group.pk, "members only")
    assert (await m1.receive_type("message.new"))["message"]["id"] == sent["message_id"]
    await x1.send({"type": "fetch", "message_ids": [sent["message_id"]], "ref": "f"})
    assert (await x1.receive_type("messages"))["messages"] == []
    assert await x1.nothing_more()

    await adb(conversations.remove_member)(owner, group.pk, member.pk)
    removed = await m1.receive_type("member.removed")
    assert removed["user_ids"] == [member.pk]
    await o1.receive_type("member.removed")
    await o1.send_text(group.pk, "after removal")
    assert await m1.nothing_more()


async def test_reading_on_one_device_updates_the_others_and_the_sender_sees_receipts(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1, b1, b2 = await ws_devices(alice), await ws_devices(bob, "b1"), await ws_devices(bob, "b2")
    for device in (a1, b1, b2):
        await device.connect()
    sent = await a1.send_text(conversation_id, "read me")
    await b1.receive_type("message.new")
    await b2.receive_type("message.new")

    await b1.send({"type": "ack", "seq": b1.cursor})
    delivered = await a1.receive(timeout=5)
    assert delivered == {
        "type": "receipt",
        "conversation_id": conversation_id,
        "user_id": bob.pk,
        "delivered_id": sent["message_id"],
    }

    await b1.send(
        {
            "type": "read",
            "conversation_id": conversation_id,
            "message_id": sent["message_id"],
            "ref": "r",
        }
    )
    read_on_b2 = await b2.receive_type("read")
    assert (read_on_b2["last_read_id"], read_on_b2["unread_count"]) == (sent["message_id"], 0)
    receipt = await a1.receive_type("receipt")
    assert receipt["read_id"] == sent["message_id"]


async def test_edits_and_deletes_propagate_live_and_show_in_history(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1, b1 = await ws_devices(alice), await ws_devices(bob)
    await a1.connect()
    await b1.connect()
    sent = await a1.send_text(conversation_id, "typo")
    await b1.receive_type("message.new")

    await a1.send({"type": "edit", "message_id": sent["message_id"], "text": "fixed", "ref": "e"})
    edited = await b1.receive_type("message.edited")
    assert edited["message"]["text"] == "fixed"
    assert edited["message"]["edited_at"]

    await b1.send({"type": "delete", "message_id": sent["message_id"], "ref": "d"})
    assert (await b1.receive_type("error"))["code"] == "not_your_message"

    await adb(messages.delete_message)(user_id=None, message_id=sent["message_id"])  # moderator
    deleted = await b1.receive_type("message.deleted")
    assert deleted["message"]["deleted"] is True
    assert deleted["message"]["text"] == ""
    page = await adb(messages.history_page)(
        bob.pk, conversation_id, before=None, after=None, limit=10
    )
    assert page[0].is_deleted
    assert page[0].text == ""


async def test_bad_frames_get_error_frames_and_the_connection_stays_open(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1 = await ws_devices(alice)
    await a1.connect()
    cases = [
        ("{not json", "malformed_frame"),
        ('["a list"]', "malformed_frame"),
        ('{"type": "dance", "ref": "1"}', "unknown_frame_type"),
        ('{"type": "send", "ref": "2"}', "invalid_frame"),
        (
            '{"type": "send", "conversation_id": 999999, "client_msg_id": "z", "text": "hi"}',
            "unknown_conversation",
        ),
        (
            f'{{"type": "send", "conversation_id": {conversation_id}, '
            '"client_msg_id": "b", "text": " "}',
            "invalid_text",
        ),
    ]
    for raw, code in cases:
        await a1.send(raw)
        assert (await a1.receive_type("error"))["code"] == code, raw
    sent = await a1.send_text(conversation_id, "still here")
    assert sent["message_id"]


async def test_unauthenticated_and_revoked_sockets_are_closed_with_documented_codes(
    users: UsersFactory, ws_devices: Any
) -> None:
    from channels.testing import WebsocketCommunicator

    from accounts import services as account_services
    from accounts.models import Device
    from chatproject.asgi import application

    anonymous = WebsocketCommunicator(application, "/ws/")
    connected, _ = await anonymous.connect()
    assert connected
    assert (await anonymous.receive_json_from())["code"] == "not_authenticated"
    assert (await anonymous.receive_output())["code"] == 4001

    (alice,) = await adb(users)(1)
    a1 = await ws_devices(alice)
    await a1.connect()
    device = await adb(Device.objects.get)(pk=a1.device_id)
    await adb(account_services.revoke_device)(device)
    assert (await a1.receive_type("error"))["code"] == "revoked"
    assert a1.communicator is not None
    assert (await a1.communicator.receive_output())["code"] == 4002
    a1.communicator = None
