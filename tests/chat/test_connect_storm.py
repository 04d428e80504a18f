"""A storm of connecting sockets shares its database work (chatproject.coalesce)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from channels.testing import WebsocketCommunicator

from accounts import services as account_services
from accounts import tokens, ws_auth
from accounts.models import Device
from chat import realtime
from chat.connection import consumer
from chat.services import sync
from chatproject.asgi import application
from presence import services as presence_services
from presence import session as presence_session
from presence.backends import get_backend

from .test_ws_messaging import UsersFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def test_thirty_sockets_connecting_at_once_share_a_few_queries(
    users: UsersFactory, ws_devices: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: dict[str, list[int]] = {"tokens": [], "hello": [], "presence": [], "routes": []}

    def counted_tokens(raws: list[str]) -> Any:
        batches["tokens"].append(len(raws))
        return tokens.devices_for_tokens(raws)

    def counted_hello(devices: list[tuple[int, int]]) -> Any:
        batches["hello"].append(len(devices))
        return sync.hello_states(devices)

    def counted_presence(openings: list[tuple[int, str]]) -> Any:
        batches["presence"].append(len(openings))
        return presence_services.connections_opened(openings)

    hub = realtime.get_hub()
    await hub.ensure_started()
    change_routes = hub._route_changes.batch_function

    async def counted_routes(changes: list[tuple[int, bool]]) -> Any:
        batches["routes"].append(len(changes))
        return await change_routes(changes)

    monkeypatch.setattr(ws_auth._device_for_token_coalesced, "batch_function", counted_tokens)
    monkeypatch.setattr(consumer._hello_state_coalesced, "batch_function", counted_hello)
    monkeypatch.setattr(presence_session._opened_coalesced, "batch_function", counted_presence)
    monkeypatch.setattr(hub._route_changes, "batch_function", counted_routes)
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
    # Presence leases and routes: a round trip per batch of sockets, not one per socket.
    # Leases open after hello (the socket is usable before): wait until all are online.
    everyone = {p.pk for p in people}
    deadline = time.monotonic() + 10
    while await adb(get_backend().online)(everyone, now=time.time()) != everyone:
        assert time.monotonic() < deadline, "not everyone came online"
        await asyncio.sleep(0.02)
    assert sum(batches["presence"]) == 30
    assert len(batches["presence"]) <= 4, batches
    if hub.routable:  # routes live in Redis (production); embedded delivery has none
        assert sum(batches["routes"]) == 30
        assert len(batches["routes"]) <= 4, batches
