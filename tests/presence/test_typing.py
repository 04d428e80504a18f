"""Typing indicators: ephemeral, to the other members only, rate-limited, never stored."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from chat.services import conversations
from chat.store import get_message_store

from .conftest import Recorder, UsersFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def test_typing_reaches_the_other_members_devices_once_per_interval_and_is_not_stored(
    users: UsersFactory, ws_devices: Any, recorder: Recorder
) -> None:
    alice, bob, carol = await adb(users)(3)
    group = await adb(conversations.create_group)(
        alice, name="team", member_ids_=[bob.pk, carol.pk]
    )
    a1, a2 = await ws_devices(alice, "a1"), await ws_devices(alice, "a2")
    b1, c1 = await ws_devices(bob, "b1"), await ws_devices(carol, "c1")
    for device in (a1, a2, b1, c1):
        await device.connect()
    seqs_before = [await adb(get_message_store().last_seq)(u.pk) for u in (alice, bob, carol)]

    recorder.clear()
    await a1.send({"type": "typing", "conversation_id": group.pk})
    for device in (b1, c1):
        assert await device.receive() == {
            "type": "typing",
            "conversation_id": group.pk,
            "user_id": alice.pk,
        }
    assert await a2.nothing_more()  # alice's own devices are not told she types
    assert await a1.nothing_more(0.05)  # and no reply
    membership_reads = len(recorder.statements)
    assert membership_reads == 1

    # Keystrokes repeat typing: within 2 s it is dropped silently, and costs no query.
    for _ in range(5):
        await a1.send({"type": "typing", "conversation_id": group.pk})
    assert await b1.nothing_more(0.3)
    assert await a1.nothing_more(0.05)
    assert len(recorder.statements) == membership_reads

    await asyncio.sleep(2)
    await a1.send({"type": "typing", "conversation_id": group.pk})
    assert (await b1.receive())["type"] == "typing"
    assert (await c1.receive())["type"] == "typing"
    assert len(recorder.statements) == membership_reads
    assert recorder.writes() == []
    assert [await adb(get_message_store().last_seq)(u.pk) for u in (alice, bob, carol)] == (
        seqs_before
    )


async def test_typing_in_a_conversation_one_is_not_in_is_refused_and_costs_one_lookup(
    users: UsersFactory, ws_devices: Any, recorder: Recorder
) -> None:
    alice, bob, eve = await adb(users)(3)
    direct, _ = await adb(conversations.get_or_create_direct)(alice, bob.pk)
    e1, b1 = await ws_devices(eve, "e1"), await ws_devices(bob, "b1")
    await e1.connect()
    await b1.connect()
    recorder.clear()
    for ref in ("t1", "t2", "t3"):
        await e1.send({"type": "typing", "conversation_id": direct.pk, "ref": ref})
        error = await e1.receive()
        assert (error["code"], error["ref"]) == ("unknown_conversation", ref)
    assert len(recorder.statements) == 1  # the refusal is remembered
    await e1.send({"type": "typing", "conversation_id": direct.pk, "user_id": alice.pk})
    assert (await e1.receive())["code"] == "invalid_frame"
    assert await b1.nothing_more()
