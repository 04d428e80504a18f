"""Which recipients a publish found offline: the input of push notifications."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from chat import realtime

from .test_ws_messaging import UsersFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def test_publish_reports_only_recipients_without_a_live_connection(
    users: UsersFactory, ws_devices: Any
) -> None:
    alice, bob, carol = await adb(users)(3)
    bob_phone = await ws_devices(bob, "phone")
    await bob_phone.connect()

    offline = await realtime.apublish([alice.pk, bob.pk, carol.pk], {"type": "test.event"})
    assert offline == [alice.pk, carol.pk]
    assert (await bob_phone.receive())["type"] == "test.event"

    # From a worker thread (how services publish after commit), same answer.
    offline = await adb(realtime.publish)([bob.pk, carol.pk], {"type": "test.event"})
    assert offline == [carol.pk]

    await bob_phone.disconnect()
    offline = await adb(realtime.publish)([bob.pk], {"type": "test.event"})
    assert offline == [bob.pk]
