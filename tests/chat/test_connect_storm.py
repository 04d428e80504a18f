"""A storm of connecting sockets shares its database work (chatproject.coalesce)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from channels.testing import WebsocketCommunicator

from accounts import services as account_services
from accounts import tokens, ws_auth
from accounts.models import Device
from chat.connection import consumer
from chat.services import sync
from chatproject.asgi import application

from .test_ws_messaging import UsersFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def test_thirty_sockets_connecting_at_once_share_a_few_queries(
    users: UsersFactory, ws_devices: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: dict[str, list[int]] = {"tokens": [], "hello": []}

    def counted_tokens(raws: list[str]) -> Any:
        batches["tokens"].append(len(raws))
        return tokens.devices_for_tokens(raws)

    def counted_hello(devices: list[tuple[int, int]]) -> Any:
        batches["hello"].append(len(devices))
        return sync.hello_states(devices)

    monkeypatch.setattr(ws_auth._device_for_token_coalesced, "batch_function", counted_tokens)
    monkeypatch.setattr(consumer._hello_state_coalesced, "batch_function", counted_hello)
    people = await adb(users)(30)
    devices = [await ws_devices(person, "phone") for person in people]
    revoked = await ws_devices(people[0], "stolen")
    await adb(lambda: account_services.revoke_device(Device.objects.get(pk=revoked.device_id)))()

    async def refused() -> dict[str, Any]:
        communicator = WebsocketCommunicator(
            application, "/ws/", headers=[(b"authorization", f"Bearer {revoked.token}".encode())]
        )
        await communicator.connect()
        frame: dict[str, Any] = await communicator.receive_json_from()
        await communicator.disconnect()
        return frame

    results = await asyncio.gather(refused(), *(device.connect(sync=False) for device in devices))

    assert results[0]["type"] == "error"
    assert results[0]["code"] == "invalid_token"
    assert [d.hello["user_id"] for d in devices] == [p.pk for p in people]
    assert [d.hello["device_id"] for d in devices] == [d.device_id for d in devices]
    assert sum(batches["tokens"]) == 31
    assert len(batches["tokens"]) <= 3, batches
    assert len(batches["hello"]) <= 3, batches
