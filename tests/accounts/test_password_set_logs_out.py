"""A password set by any path logs every device out: old tokens get 401 and open sockets
close with 4002, as after the user's own password change (which keeps only the device it
was made from). The sockets go through the real ASGI application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from tests.chat.conftest import WsDevice
from tests.conftest import PASSWORD

from .helpers import MakeUser, assert_error, token_client

pytestmark = pytest.mark.django_db(transaction=True)

ME = "/api/v1/me"
NEW_PASSWORD = "a-new-long-passphrase-37"
WsDevices = Callable[..., Awaitable[WsDevice]]


async def _connected(ws_devices: WsDevices, user: User, name: str) -> WsDevice:
    device = await ws_devices(user, name)
    await device.connect()
    return device


async def _assert_logged_out(device: WsDevice) -> None:
    """The socket gets a ``revoked`` error and closes with 4002; the token is refused."""
    assert (await device.receive_type("error"))["code"] == "revoked"
    assert device.communicator is not None
    assert (await device.communicator.receive_output())["code"] == 4002
    device.communicator = None
    response = await adb(token_client(device.token).get)(ME)
    assert_error(response, 401, "authentication_failed")


async def _assert_still_logged_in(device: WsDevice) -> None:
    assert await device.nothing_more()
    await device.send({"type": "ping", "ref": "p"})
    assert (await device.receive_type("pong"))["ref"] == "p"
    assert (await adb(token_client(device.token).get)(ME)).status_code == 200


def _can_log_in(username: str, password: str) -> bool:
    response = APIClient().post("/api/v1/auth/login", {"username": username, "password": password})
    return bool(response.status_code == 200)


async def test_password_set_in_the_admin_form_logs_out_every_device(
    make_user: MakeUser, ws_devices: WsDevices
) -> None:
    alice = await adb(make_user)("alice")
    phone = await _connected(ws_devices, alice, "phone")
    laptop = await _connected(ws_devices, alice, "laptop")

    def admin_sets_password() -> int:
        moderator = make_user("moderator")
        moderator.is_staff = moderator.is_superuser = True
        moderator.save()
        client = Client()
        client.force_login(moderator)
        url = f"/admin/accounts/user/{alice.pk}/password/"
        assert client.get(url).status_code == 200
        response = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
        return int(response.status_code)

    assert await adb(admin_sets_password)() == 302
    await _assert_logged_out(phone)
    await _assert_logged_out(laptop)
    assert await adb(_can_log_in)("alice", NEW_PASSWORD)


async def test_set_password_and_save_logs_out_every_device(
    make_user: MakeUser, ws_devices: WsDevices
) -> None:
    alice = await adb(make_user)("alice")
    bob = await adb(make_user)("bob")
    phone = await _connected(ws_devices, alice, "phone")
    bystander = await _connected(ws_devices, bob, "phone")

    def set_password() -> None:
        user = User.objects.get(username="alice")
        user.set_password(NEW_PASSWORD)
        user.save()

    await adb(set_password)()
    await _assert_logged_out(phone)
    await _assert_still_logged_in(bystander)


async def test_changepassword_command_logs_out_every_device(
    make_user: MakeUser, ws_devices: WsDevices, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await adb(make_user)("alice")
    phone = await _connected(ws_devices, alice, "phone")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)
    await adb(call_command)("changepassword", "alice")
    await _assert_logged_out(phone)
    assert await adb(_can_log_in)("alice", NEW_PASSWORD)


async def test_saving_a_user_without_changing_the_password_logs_nobody_out(
    make_user: MakeUser, ws_devices: WsDevices
) -> None:
    alice = await adb(make_user)("alice")
    phone = await _connected(ws_devices, alice, "phone")

    def edit_profile() -> None:
        user = User.objects.get(username="alice")
        user.first_name = "Alice"
        user.save()

    await adb(edit_profile)()
    await _assert_still_logged_in(phone)


async def test_own_password_change_keeps_the_device_it_was_made_from(
    make_user: MakeUser, ws_devices: WsDevices
) -> None:
    alice = await adb(make_user)("alice")
    phone = await _connected(ws_devices, alice, "phone")
    laptop = await _connected(ws_devices, alice, "laptop")
    response: Any = await adb(token_client(phone.token).post)(
        "/api/v1/auth/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 204
    await _assert_logged_out(laptop)
    await _assert_still_logged_in(phone)
