"""A revocation or deactivation that only reached the database (written by another process,
so no in-process close and, embedded, no Redis) still stops open sockets (issue 11, item 4):
the next send is refused and the presence tick closes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from django.utils import timezone

from accounts.models import Device, User
from chat.services import conversations
from chat.store import get_message_store
from presence.session import get_tracker

pytestmark = pytest.mark.django_db(transaction=True)

UsersFactory = Callable[[int], list[User]]


def _revoke_behind_the_services(device_id: int) -> None:
    # A bulk update, as another process or a shell would: no hook of ours runs.
    Device.objects.filter(pk=device_id).update(revoked_at=timezone.now())


def _deactivate_behind_the_services(user: User) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


async def _expect_revoked_close(device: Any) -> None:
    assert (await device.receive_type("error"))["code"] == "revoked"
    assert device.communicator is not None
    assert (await device.communicator.receive_output())["code"] == 4002
    device.communicator = None


async def test_a_send_from_a_device_revoked_elsewhere_is_refused_and_closes_it(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    conversation, _ = await adb(conversations.get_or_create_direct)(alice, bob.pk)
    a1, b1 = await ws_devices(alice, "a1"), await ws_devices(bob, "b1")
    await a1.connect()
    await b1.connect()
    before = await adb(get_message_store().last_seq)(bob.pk)

    await adb(_revoke_behind_the_services)(a1.device_id)
    await a1.send(
        {
            "type": "send",
            "conversation_id": conversation.pk,
            "client_msg_id": "after-revocation",
            "text": "should not be stored",
            "ref": "r",
        }
    )
    await _expect_revoked_close(a1)
    assert await b1.nothing_more()
    assert await adb(get_message_store().last_seq)(bob.pk) == before


async def test_the_presence_tick_closes_sockets_of_users_deactivated_elsewhere(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob = await adb(users)(2)
    a1, a2, b1 = (
        await ws_devices(alice, "a1"),
        await ws_devices(alice, "a2"),
        await ws_devices(bob, "b1"),
    )
    for device in (a1, a2, b1):
        await device.connect()

    await adb(_deactivate_behind_the_services)(alice)
    await get_tracker().tick()
    await _expect_revoked_close(a1)
    await _expect_revoked_close(a2)
    await b1.send({"type": "ping", "ref": "p"})
    assert (await b1.receive_type("pong"))["ref"] == "p"
