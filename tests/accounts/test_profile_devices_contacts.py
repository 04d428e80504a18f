"""Profile, devices, password change, user directory and contacts."""

from __future__ import annotations

import pytest
from pytest_django import DjangoCaptureOnCommitCallbacks
from rest_framework.test import APIClient

from accounts.models import Device, User
from tests.conftest import PASSWORD

from .conftest import DisconnectCalls
from .helpers import LoginClient, MakeUser, assert_error, token_client

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"
DEVICES = "/api/v1/devices"
PASSWORD_URL = "/api/v1/auth/password"
USERS = "/api/v1/users"
CONTACTS = "/api/v1/contacts"
NEW_PASSWORD = "another-long-passphrase-42"


# --- /me ---------------------------------------------------------------------------------------


def test_me_shows_the_profile(login_client: LoginClient, make_user: MakeUser) -> None:
    client, user, _ = login_client(make_user("alice", display_name="Alice L."))
    body = client.get(ME).json()
    assert body["id"] == user.pk
    assert body["username"] == "alice"
    assert body["display_name"] == "Alice L."
    assert "password" not in body


def test_patch_me_changes_the_display_name(login_client: LoginClient) -> None:
    client, user, _ = login_client()
    response = client.patch(ME, {"display_name": "  New Name  "})
    assert response.status_code == 200
    assert response.json()["display_name"] == "New Name"
    assert client.get(ME).json()["display_name"] == "New Name"
    user.refresh_from_db()
    assert user.display_name == "New Name"


def test_patch_me_cannot_change_the_username(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, user, _ = login_client(make_user("alice"))
    response = client.patch(ME, {"username": "mallory", "display_name": "A"})
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    user.refresh_from_db()
    assert user.username == "alice"


def test_patch_me_with_too_long_display_name_is_refused(login_client: LoginClient) -> None:
    client, _, _ = login_client()
    assert_error(
        client.patch(ME, {"display_name": "x" * 101}),
        400,
        "validation_error",
        fields=("display_name",),
    )


def test_put_me_is_not_allowed(login_client: LoginClient) -> None:
    client, _, _ = login_client()
    assert_error(client.put(ME, {"display_name": "x"}), 405, "method_not_allowed")


# --- devices -----------------------------------------------------------------------------------


def test_device_list_marks_the_current_device(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    phone, _, _ = login_client(user, device_name="phone")
    login_client(user, device_name="laptop")
    devices = phone.get(DEVICES).json()
    assert sorted(d["name"] for d in devices) == ["laptop", "phone"]
    assert [d["name"] for d in devices if d["current"]] == ["phone"]
    assert all("token_hash" not in d for d in devices)


def test_device_list_shows_only_own_unrevoked_devices(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    alice = make_user("alice")
    client, _, _ = login_client(alice, device_name="phone")
    _, _, old_token = login_client(alice, device_name="old")
    token_client(old_token).post("/api/v1/auth/logout")
    login_client(make_user("bob"), device_name="bobs")
    assert [d["name"] for d in client.get(DEVICES).json()] == ["phone"]


def test_revoked_device_token_fails_on_the_next_request(
    login_client: LoginClient,
    make_user: MakeUser,
    disconnects: DisconnectCalls,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    user = make_user("alice")
    phone, _, _ = login_client(user, device_name="phone")
    laptop, _, _ = login_client(user, device_name="laptop")
    assert laptop.get(ME).status_code == 200
    laptop_id = Device.objects.get(user=user, name="laptop").pk
    with django_capture_on_commit_callbacks(execute=True):
        assert phone.delete(f"{DEVICES}/{laptop_id}").status_code == 204
    assert_error(laptop.get(ME), 401, "authentication_failed")
    assert phone.get(ME).status_code == 200
    assert disconnects.calls == [(user.pk, [laptop_id])]


def test_cannot_revoke_another_users_device(login_client: LoginClient, make_user: MakeUser) -> None:
    alice, _, _ = login_client(make_user("alice"))
    bob, bob_user, _ = login_client(make_user("bob"))
    bob_device = Device.objects.get(user=bob_user)
    assert_error(alice.delete(f"{DEVICES}/{bob_device.pk}"), 404, "not_found")
    assert bob.get(ME).status_code == 200


def test_revoking_an_unknown_or_already_revoked_device_is_404(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    user = make_user("alice")
    phone, _, _ = login_client(user, device_name="phone")
    login_client(user, device_name="laptop")
    laptop_id = Device.objects.get(user=user, name="laptop").pk
    assert phone.delete(f"{DEVICES}/{laptop_id}").status_code == 204
    assert_error(phone.delete(f"{DEVICES}/{laptop_id}"), 404, "not_found")
    assert_error(phone.delete(f"{DEVICES}/999999"), 404, "not_found")


# --- password change ---------------------------------------------------------------------------


def test_password_change_with_wrong_old_password_is_refused(
    login_client: LoginClient, api: APIClient
) -> None:
    client, user, _ = login_client()
    response = client.post(PASSWORD_URL, {"old_password": "wrong", "new_password": NEW_PASSWORD})
    assert_error(response, 401, "invalid_credentials", fields=("old_password",))
    # The session/token survives the refusal and the old password still works.
    assert client.get(ME).status_code == 200
    assert (
        api.post(
            "/api/v1/auth/login", {"username": user.username, "password": PASSWORD}
        ).status_code
        == 200
    )


def test_password_change_to_a_weak_password_is_refused(login_client: LoginClient) -> None:
    client, user, _ = login_client()
    response = client.post(PASSWORD_URL, {"old_password": PASSWORD, "new_password": "123"})
    assert_error(response, 400, "weak_password", fields=("new_password",))
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_change_without_fields_is_a_validation_error(login_client: LoginClient) -> None:
    client, _, _ = login_client()
    assert_error(
        client.post(PASSWORD_URL, {}),
        400,
        "validation_error",
        fields=("old_password", "new_password"),
    )


def test_password_change_keeps_this_device_and_logs_out_the_others(
    login_client: LoginClient,
    make_user: MakeUser,
    api: APIClient,
    disconnects: DisconnectCalls,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    user = make_user("alice")
    phone, _, _ = login_client(user, device_name="phone")
    laptop, _, _ = login_client(user, device_name="laptop")
    tablet, _, _ = login_client(user, device_name="tablet")
    browser = APIClient()
    browser_login = browser.post(
        "/api/v1/auth/login", {"username": "alice", "password": PASSWORD, "session": True}
    )
    browser_device = browser_login.json()["device"]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = phone.post(
            PASSWORD_URL, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
    assert response.status_code == 204
    assert phone.get(ME).status_code == 200
    assert_error(laptop.get(ME), 401, "authentication_failed")
    assert_error(tablet.get(ME), 401, "authentication_failed")
    assert browser.get(ME).status_code in (401, 403)
    others = set(
        Device.objects.filter(user=user).exclude(name="phone").values_list("pk", flat=True)
    )
    assert disconnects.devices_closed() == others
    assert browser_device in others
    assert_error(
        api.post("/api/v1/auth/login", {"username": "alice", "password": PASSWORD}),
        401,
        "invalid_credentials",
    )
    assert (
        api.post("/api/v1/auth/login", {"username": "alice", "password": NEW_PASSWORD}).status_code
        == 200
    )


def test_password_change_from_a_browser_session_keeps_it_logged_in(make_user: MakeUser) -> None:
    make_user("alice")
    browser = APIClient()
    browser.post("/api/v1/auth/login", {"username": "alice", "password": PASSWORD, "session": True})
    response = browser.post(PASSWORD_URL, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204
    assert browser.get(ME).status_code == 200


# --- user directory ----------------------------------------------------------------------------


def _usernames(response: object) -> list[str]:
    return [u["username"] for u in response.json()["results"]]  # type: ignore[attr-defined]


def test_user_search_matches_username_and_display_name(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client(make_user("me"))
    make_user("alice", display_name="Alice Liddell")
    make_user("bob", display_name="Wonderland Fan")
    make_user("carol")
    assert _usernames(client.get(USERS, {"search": "ALI"})) == ["alice"]
    assert _usernames(client.get(USERS, {"search": "wonder"})) == ["bob"]
    assert _usernames(client.get(USERS, {"search": "liddell"})) == ["alice"]
    assert _usernames(client.get(USERS, {"search": "zzz"})) == []
    result = client.get(USERS, {"search": "o"}).json()
    assert [u["username"] for u in result["results"]] == ["bob", "carol"]
    assert result["count"] == 2
    assert set(result["results"][0]) == {"id", "username", "display_name"}


def test_user_search_hides_inactive_users(login_client: LoginClient, make_user: MakeUser) -> None:
    client, _, _ = login_client(make_user("me"))
    gone = make_user("alice-gone", display_name="Alice")
    make_user("alice")
    User.objects.filter(pk=gone.pk).update(is_active=False)
    assert _usernames(client.get(USERS, {"search": "alice"})) == ["alice"]


def test_user_search_needs_authentication(api: APIClient) -> None:
    assert_error(api.get(USERS, {"search": "a"}), 401, "not_authenticated")


def test_user_detail(login_client: LoginClient, make_user: MakeUser) -> None:
    client, _, _ = login_client()
    alice = make_user("alice", display_name="Alice")
    response = client.get(f"{USERS}/{alice.pk}")
    assert response.status_code == 200
    assert response.json() == {"id": alice.pk, "username": "alice", "display_name": "Alice"}


def test_user_detail_of_unknown_or_inactive_user_is_404(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    assert_error(client.get(f"{USERS}/999999"), 404, "unknown_user")
    gone = make_user("gone")
    User.objects.filter(pk=gone.pk).update(is_active=False)
    assert_error(client.get(f"{USERS}/{gone.pk}"), 404, "unknown_user")


# --- contacts ----------------------------------------------------------------------------------


def _contact_names(client: APIClient) -> list[str]:
    response = client.get(CONTACTS)
    assert response.status_code == 200
    return [c["user"]["username"] for c in response.json()]


def test_add_list_and_remove_contacts(login_client: LoginClient, make_user: MakeUser) -> None:
    client, _, _ = login_client(make_user("me"))
    bob = make_user("bob", display_name="Bob")
    alice = make_user("alice")
    response = client.post(CONTACTS, {"user_id": bob.pk})
    assert response.status_code == 201
    assert response.json()["user"] == {"id": bob.pk, "username": "bob", "display_name": "Bob"}
    client.post(CONTACTS, {"user_id": alice.pk})
    assert _contact_names(client) == ["alice", "bob"]
    assert client.delete(f"{CONTACTS}/{bob.pk}").status_code == 204
    assert _contact_names(client) == ["alice"]


def test_contacts_are_one_directional_and_private(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    me_client, me, _ = login_client(make_user("me"))
    bob_client, bob, _ = login_client(make_user("bob"))
    me_client.post(CONTACTS, {"user_id": bob.pk})
    assert _contact_names(bob_client) == []
    assert_error(bob_client.delete(f"{CONTACTS}/{me.pk}"), 404, "not_found")
    assert _contact_names(me_client) == ["bob"]


def test_adding_a_contact_twice_is_idempotent(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    bob = make_user("bob")
    first = client.post(CONTACTS, {"user_id": bob.pk})
    second = client.post(CONTACTS, {"user_id": bob.pk})
    assert first.status_code in (200, 201)
    assert second.status_code in (200, 201)
    assert first.json() == second.json()
    assert _contact_names(client) == ["bob"]


def test_cannot_add_yourself_as_a_contact(login_client: LoginClient) -> None:
    client, user, _ = login_client()
    assert_error(client.post(CONTACTS, {"user_id": user.pk}), 400, "invalid_contact")
    assert _contact_names(client) == []


def test_cannot_add_an_unknown_or_inactive_contact(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    assert_error(client.post(CONTACTS, {"user_id": 999999}), 404, "unknown_user")
    gone = make_user("gone")
    User.objects.filter(pk=gone.pk).update(is_active=False)
    assert_error(client.post(CONTACTS, {"user_id": gone.pk}), 404, "unknown_user")
    assert_error(
        client.post(CONTACTS, {"user_id": "abc"}), 400, "validation_error", fields=("user_id",)
    )
    assert _contact_names(client) == []


def test_removing_a_non_contact_is_404(login_client: LoginClient, make_user: MakeUser) -> None:
    client, _, _ = login_client()
    bob = make_user("bob")
    assert_error(client.delete(f"{CONTACTS}/{bob.pk}"), 404, "not_found")
    assert_error(client.delete(f"{CONTACTS}/999999"), 404, "not_found")


def test_deactivated_contacts_drop_out_of_the_list(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    bob = make_user("bob")
    client.post(CONTACTS, {"user_id": bob.pk})
    User.objects.filter(pk=bob.pk).update(is_active=False)
    assert _contact_names(client) == []
