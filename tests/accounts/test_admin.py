"""Moderation through the Django admin: deactivating users and revoking devices."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks
from rest_framework.test import APIClient

from accounts.models import Device, User

from .conftest import DisconnectCalls
from .helpers import LoginClient, MakeUser, assert_error

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"


@pytest.fixture
def moderator(make_user: MakeUser) -> Client:
    staff = make_user("moderator")
    staff.is_staff = True
    staff.is_superuser = True
    staff.save()
    client = Client()
    client.force_login(staff)
    return client


def _two_devices(login_client: LoginClient, user: User) -> tuple[APIClient, APIClient]:
    phone, _, _ = login_client(user, device_name="phone")
    laptop, _, _ = login_client(user, device_name="laptop")
    assert phone.get(ME).status_code == 200
    assert laptop.get(ME).status_code == 200
    return phone, laptop


def test_deactivate_action_cuts_off_every_token_at_once(
    moderator: Client,
    make_user: MakeUser,
    login_client: LoginClient,
    disconnects: DisconnectCalls,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    spammer = make_user("spammer")
    bystander = make_user("bystander")
    phone, laptop = _two_devices(login_client, spammer)
    other, _, _ = login_client(bystander)
    with django_capture_on_commit_callbacks(execute=True):
        response = moderator.post(
            "/admin/accounts/user/",
            {"action": "deactivate_users", "_selected_action": [str(spammer.pk)]},
        )
    assert response.status_code == 302
    assert_error(phone.get(ME), 401, "authentication_failed")
    assert_error(laptop.get(ME), 401, "authentication_failed")
    assert other.get(ME).status_code == 200
    spammer.refresh_from_db()
    assert not spammer.is_active
    assert disconnects.devices_closed() == set(
        Device.objects.filter(user=spammer).values_list("pk", flat=True)
    )
    assert len(disconnects.devices_closed()) == 2


def test_deactivate_action_handles_several_users(
    moderator: Client, make_user: MakeUser, login_client: LoginClient
) -> None:
    first, second = make_user("first"), make_user("second")
    first_client, _, _ = login_client(first)
    second_client, _, _ = login_client(second)
    response = moderator.post(
        "/admin/accounts/user/",
        {"action": "deactivate_users", "_selected_action": [str(first.pk), str(second.pk)]},
        follow=True,
    )
    assert "Deactivated 2 user(s)." in response.content.decode()
    assert first_client.get(ME).status_code == 401
    assert second_client.get(ME).status_code == 401


def test_unticking_active_in_the_change_form_cuts_off_every_token(
    moderator: Client,
    make_user: MakeUser,
    login_client: LoginClient,
    disconnects: DisconnectCalls,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    spammer = make_user("spammer", display_name="Spam")
    phone, laptop = _two_devices(login_client, spammer)
    url = f"/admin/accounts/user/{spammer.pk}/change/"
    assert moderator.get(url).status_code == 200
    form = {
        "username": "spammer",
        "first_name": "",
        "last_name": "",
        "email": "",
        # is_active left out: the checkbox is unticked.
        "date_joined_0": spammer.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": spammer.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "display_name": "Spam",
        "_save": "Save",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = moderator.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    spammer.refresh_from_db()
    assert not spammer.is_active
    assert_error(phone.get(ME), 401, "authentication_failed")
    assert_error(laptop.get(ME), 401, "authentication_failed")
    assert Device.objects.filter(user=spammer, revoked_at__isnull=True).count() == 0
    assert len(disconnects.devices_closed()) == 2


def test_saving_an_active_user_in_the_admin_keeps_their_tokens(
    moderator: Client, make_user: MakeUser, login_client: LoginClient
) -> None:
    user = make_user("alice")
    phone, _, _ = login_client(user)
    form = {
        "username": "alice",
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "display_name": "Alice A.",
        "_save": "Save",
    }
    response = moderator.post(f"/admin/accounts/user/{user.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    body = phone.get(ME).json()
    assert body["display_name"] == "Alice A."


def test_revoke_devices_action_cuts_off_the_selected_devices(
    moderator: Client,
    make_user: MakeUser,
    login_client: LoginClient,
    disconnects: DisconnectCalls,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    user = make_user("alice")
    phone, laptop = _two_devices(login_client, user)
    laptop_device = Device.objects.get(user=user, name="laptop")
    with django_capture_on_commit_callbacks(execute=True):
        response = moderator.post(
            "/admin/accounts/device/",
            {"action": "revoke_devices", "_selected_action": [str(laptop_device.pk)]},
        )
    assert response.status_code == 302
    assert_error(laptop.get(ME), 401, "authentication_failed")
    assert phone.get(ME).status_code == 200
    assert disconnects.calls == [(user.pk, [laptop_device.pk])]
    laptop_device.refresh_from_db()
    assert laptop_device.revoked_at is not None


def test_admin_lists_users_and_devices(
    moderator: Client, make_user: MakeUser, login_client: LoginClient
) -> None:
    login_client(make_user("alice"), device_name="alice-phone")
    users = moderator.get("/admin/accounts/user/", {"q": "alice"})
    assert users.status_code == 200
    assert "alice" in users.content.decode()
    devices = moderator.get("/admin/accounts/device/")
    assert devices.status_code == 200
    assert "alice-phone" in devices.content.decode()
    assert moderator.get("/admin/accounts/device/add/").status_code == 403
    assert moderator.get("/admin/accounts/contact/").status_code == 200


def test_admin_can_create_a_user(moderator: Client) -> None:
    response = moderator.post(
        "/admin/accounts/user/add/",
        {
            "username": "newbie",
            "password1": "a-strong-passphrase-9",
            "password2": "a-strong-passphrase-9",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert (
        APIClient()
        .post("/api/v1/auth/login", {"username": "newbie", "password": "a-strong-passphrase-9"})
        .status_code
        == 200
    )


def test_admin_cannot_create_a_username_differing_only_in_case(
    moderator: Client, make_user: MakeUser
) -> None:
    make_user("alice")
    response = moderator.post(
        "/admin/accounts/user/add/",
        {
            "username": "ALICE",
            "password1": "a-strong-passphrase-9",
            "password2": "a-strong-passphrase-9",
            "usable_password": "true",
        },
    )
    assert response.status_code == 200  # the form is shown again with an error
    assert User.objects.filter(username__iexact="alice").count() == 1


def test_deleting_a_user_in_the_admin_closes_their_connections(
    moderator: Client,
    make_user: MakeUser,
    login_client: LoginClient,
    disconnects: DisconnectCalls,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    spammer = make_user("spammer")
    spammer_id = spammer.pk
    phone, laptop = _two_devices(login_client, spammer)
    device_ids = set(Device.objects.filter(user=spammer).values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = moderator.post(f"/admin/accounts/user/{spammer.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=spammer.pk).exists()
    assert_error(phone.get(ME), 401, "authentication_failed")
    assert_error(laptop.get(ME), 401, "authentication_failed")
    assert disconnects.calls == [(spammer_id, sorted(device_ids))]


def test_bulk_deleting_users_and_devices_in_the_admin_closes_connections(
    moderator: Client,
    make_user: MakeUser,
    login_client: LoginClient,
    disconnects: DisconnectCalls,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    alice_client, _, _ = login_client(alice)
    bob_client, _, _ = login_client(bob)
    bob_device = Device.objects.get(user=bob)
    alice_device = Device.objects.get(user=alice)
    alice_id, bob_id = alice.pk, bob.pk
    with django_capture_on_commit_callbacks(execute=True):
        moderator.post(
            "/admin/accounts/user/",
            {"action": "delete_selected", "_selected_action": [str(alice.pk)], "post": "yes"},
        )
        moderator.post(
            "/admin/accounts/device/",
            {"action": "delete_selected", "_selected_action": [str(bob_device.pk)], "post": "yes"},
        )
    assert not User.objects.filter(pk=alice.pk).exists()
    assert not Device.objects.filter(pk=bob_device.pk).exists()
    assert alice_client.get(ME).status_code == 401
    assert bob_client.get(ME).status_code == 401
    assert sorted(disconnects.calls) == sorted(
        [(alice_id, [alice_device.pk]), (bob_id, [bob_device.pk])]
    )
