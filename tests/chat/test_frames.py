"""One definition per server frame and one function per answer (chat/frames.py,
chat/replies.py): a live event and its sync-page replay are the same frame, and REST and the
WebSocket give the same answer to the same question."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User
from chat.models import Conversation
from chat.services import conversations, messages

from .conftest import WsDevice

pytestmark = pytest.mark.django_db(transaction=True)

LoginClient = Callable[..., tuple[APIClient, User, str]]
# Every stream event kind a device receives live, each produced once below.
STREAM_KINDS = {
    "member.added",
    "message.new",
    "message.edited",
    "conversation.updated",
    "read",
}


async def _live_until(device: WsDevice, frame_type: str) -> list[dict[str, Any]]:
    """The stream frames (with a seq) ``device`` receives until one of ``frame_type``."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = await device.receive()
        if "seq" in frame:
            frames.append(frame)
        if frame["type"] == frame_type:
            return frames


async def _bob_live_in_a_direct_with_alice(
    users: Callable[[int], list[User]], ws_devices: Any
) -> tuple[User, User, Conversation, WsDevice]:
    alice, bob = await adb(users)(2)
    direct, _ = await adb(conversations.get_or_create_direct)(alice, bob.pk)
    b1 = await ws_devices(bob, "b1")
    await b1.connect()
    return alice, bob, direct, b1


async def test_every_live_stream_event_is_replayed_identically_by_a_sync_page(
    users: Callable[[int], list[User]], ws_devices: Any
) -> None:
    alice, bob, direct, b1 = await _bob_live_in_a_direct_with_alice(users, ws_devices)

    first = await adb(messages.send_message)(
        sender_id=alice.pk, conversation_id=direct.pk, client_msg_id="m1", text="first"
    )
    live = await _live_until(b1, "message.new")
    second = await adb(messages.send_message)(
        sender_id=alice.pk, conversation_id=direct.pk, client_msg_id="m2", text="second"
    )
    await _live_until(b1, "message.new")  # replayed as edited below: not compared
    await adb(messages.edit_message)(user_id=alice.pk, message_id=second.message.id, text="2nd")
    live += await _live_until(b1, "message.edited")
    group = await adb(conversations.create_group)(alice, name="Team", member_ids_=[bob.pk])
    live += await _live_until(b1, "member.added")
    await adb(conversations.rename_group)(alice, group.pk, "Team 2")
    live += await _live_until(b1, "conversation.updated")
    await b1.send(
        {
            "type": "read",
            "ref": "rd",
            "conversation_id": direct.pk,
            "message_id": first.message.id,
        }
    )
    live += await _live_until(b1, "read")

    b2 = await ws_devices(bob, "b2")
    replayed = {event["seq"]: event for event in await b2.connect()}

    assert {frame["type"] for frame in live} == STREAM_KINDS
    for frame in live:
        assert replayed[frame["seq"]] == frame
        assert list(replayed[frame["seq"]]) == list(frame)  # the same fields, in order (jsonb too)


@override_settings(LIVE_EVENT_FULL_TEXT_LIMIT=10)
async def test_a_long_message_is_a_preview_live_and_in_full_in_the_sync_page(
    users: Callable[[int], list[User]], ws_devices: Any
) -> None:
    alice, bob, direct, b1 = await _bob_live_in_a_direct_with_alice(users, ws_devices)
    text = "a fairly long message"

    await adb(messages.send_message)(
        sender_id=alice.pk, conversation_id=direct.pk, client_msg_id="long", text=text
    )
    live = await b1.receive_type("message.new")
    replayed = {e["seq"]: e for e in await (await ws_devices(bob, "b2")).connect()}

    assert live["message"]["text"] == text[:10]
    assert live["message"]["truncated"] is True
    assert replayed[live["seq"]] == {
        **live,
        "message": {**live["message"], "text": text, "truncated": False},
    }


async def test_read_and_sync_answers_are_the_same_on_rest_and_the_websocket(
    login_client: LoginClient, make_user: Callable[..., User], ws_devices: Any
) -> None:
    alice = await adb(make_user)()
    client, bob, _ = await adb(login_client)()
    direct, _ = await adb(conversations.get_or_create_direct)(alice, bob.pk)
    sent = [
        await adb(messages.send_message)(
            sender_id=alice.pk, conversation_id=direct.pk, client_msg_id=f"m{n}", text=f"m{n}"
        )
        for n in range(3)
    ]
    b1 = await ws_devices(bob, "b1")
    await b1.connect(sync=False)

    rest_read = await adb(client.post)(
        f"/api/v1/conversations/{direct.pk}/read", {"message_id": sent[0].message.id}
    )
    await b1.send(
        {
            "type": "read",
            "ref": "rd",
            "conversation_id": direct.pk,
            "message_id": sent[1].message.id,
        }
    )
    ws_read = await b1.receive_type("ok")

    assert rest_read.json() == {"last_read_id": sent[0].message.id, "unread_count": 2}
    assert ws_read == {
        "type": "ok",
        "ref": "rd",
        "last_read_id": sent[1].message.id,
        "unread_count": 1,
    }

    rest_page = (await adb(client.get)("/api/v1/sync", {"after": 1, "limit": 3})).json()
    await b1.send({"type": "sync", "ref": "s", "after": 1, "limit": 3})
    ws_page = await b1.receive_type("sync.page")

    assert ws_page == {"type": "sync.page", "ref": "s", **rest_page}
    assert rest_page["has_more"] is True
    assert [e["seq"] for e in rest_page["events"]] == [2, 3, 4]
