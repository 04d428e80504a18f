"""Sign-up, log-in (token and browser session), log-out and token validity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks
from rest_framework.test import APIClient

from accounts.models import Device, User
from tests.conftest import PASSWORD

from .conftest import DisconnectCalls
from .helpers import LoginClient, MakeUser, assert_error, token_client

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"


def test_signup_returns_a_working_token(api: APIClient) -> None:
    response = api.post(
        SIGNUP,
        {
            "username": "alice",
            "password": PASSWORD,
            "display_name": " Alice ",
            "device_name": "Pixel",
            "platform": "android",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("dt_")
    assert body["user"]["username"] == "alice"
    assert body["user"]["display_name"] == "Alice"
    assert body["device"]["name"] == "Pixel"
    assert body["device"]["platform"] == "android"
    assert body["device"]["current"] is True
    assert "token_hash" not in body["device"]
    me = token_client(body["token"]).get(ME)
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


def test_signup_stores_only_a_hash_of_the_token(api: APIClient) -> None:
    token = api.post(SIGNUP, {"username": "alice", "password": PASSWORD}).json()["token"]
    device = Device.objects.get(user__username="alice")
    assert token not in (device.token_hash, device.token_prefix)
    assert token.startswith(device.token_prefix)


@pytest.mark.parametrize("taken", ["alice", "ALICE", "Alice"])
def test_signup_with_a_taken_username_in_any_case_is_a_conflict(
    api: APIClient, make_user: MakeUser, taken: str
) -> None:
    make_user("alice")
    response = api.post(SIGNUP, {"username": taken, "password": PASSWORD})
    assert_error(response, 409, "username_taken", fields=("username",))
    assert User.objects.filter(username__iexact="alice").count() == 1


@pytest.mark.parametrize("password", ["short1", "password123", "12345678901", "alice-the-user"])
def test_signup_with_a_weak_password_is_refused(api: APIClient, password: str) -> None:
    response = api.post(SIGNUP, {"username": "alice-the-user", "password": password})
    error = assert_error(response, 400, "weak_password", fields=("password",))
    assert error["fields"]["password"]
    assert not User.objects.filter(username="alice-the-user").exists()


def test_signup_without_fields_names_the_missing_ones(api: APIClient) -> None:
    response = api.post(SIGNUP, {})
    assert_error(response, 400, "validation_error", fields=("username", "password"))


@pytest.mark.parametrize("username", ["bad name", "semi;colon", "<script>", "slash/y", ""])
def test_signup_with_bad_username_characters_is_refused(api: APIClient, username: str) -> None:
    response = api.post(SIGNUP, {"username": username, "password": PASSWORD})
    assert_error(response, 400, "validation_error", fields=("username",))
    assert not User.objects.exists()


def test_signup_with_an_overlong_username_is_refused(api: APIClient) -> None:
    response = api.post(SIGNUP, {"username": "a" * 151, "password": PASSWORD})
    assert_error(response, 400, "validation_error", fields=("username",))


def test_login_returns_a_token_that_works(api: APIClient, make_user: MakeUser) -> None:
    make_user("alice")
    response = api.post(
        LOGIN,
        {"username": "alice", "password": PASSWORD, "device_name": "Laptop", "platform": "desktop"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["device"]["name"] == "Laptop"
    assert body["device"]["platform"] == "desktop"
    me = token_client(body["token"]).get(ME)
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


def test_each_login_is_a_separate_device(api: APIClient, make_user: MakeUser) -> None:
    make_user("alice")
    first = api.post(LOGIN, {"username": "alice", "password": PASSWORD}).json()
    second = api.post(LOGIN, {"username": "alice", "password": PASSWORD}).json()
    assert first["token"] != second["token"]
    assert first["device"]["id"] != second["device"]["id"]


def test_login_username_is_case_insensitive(api: APIClient, make_user: MakeUser) -> None:
    make_user("Alice")
    response = api.post(LOGIN, {"username": "aLICE", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "Alice"


def test_login_with_wrong_password_is_refused(api: APIClient, make_user: MakeUser) -> None:
    make_user("alice")
    response = api.post(LOGIN, {"username": "alice", "password": "not-the-password"})
    assert_error(response, 401, "invalid_credentials")
    assert not Device.objects.exists()


def test_login_as_unknown_user_looks_like_a_wrong_password(api: APIClient) -> None:
    response = api.post(LOGIN, {"username": "nobody", "password": PASSWORD})
    assert_error(response, 401, "invalid_credentials")


def test_login_of_a_deactivated_user_is_refused(api: APIClient, make_user: MakeUser) -> None:
    user = make_user("alice")
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = api.post(LOGIN, {"username": "alice", "password": PASSWORD})
    assert_error(response, 401, "invalid_credentials")


def test_login_without_fields_is_a_validation_error(api: APIClient) -> None:
    response = api.post(LOGIN, {"username": "alice"})
    assert_error(response, 400, "validation_error", fields=("password",))


def test_session_login_authenticates_the_browser_without_a_token(make_user: MakeUser) -> None:
    make_user("alice")
    browser = APIClient()
    response = browser.post(
        LOGIN, {"username": "alice", "password": PASSWORD, "session": True, "platform": "web"}
    )
    assert response.status_code == 200
    assert settings.SESSION_COOKIE_NAME in response.cookies
    me = browser.get(ME)
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


def test_login_without_session_flag_sets_no_session(make_user: MakeUser) -> None:
    make_user("alice")
    client = APIClient()
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD})
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert_error(client.get(ME), 401, "not_authenticated")


def test_signup_with_session_flag_logs_the_browser_in(api: APIClient) -> None:
    response = api.post(SIGNUP, {"username": "alice", "password": PASSWORD, "session": True})
    assert response.status_code == 201
    assert api.get(ME).status_code == 200


def test_revoking_a_session_device_from_another_device_ends_the_session(
    make_user: MakeUser,
    login_client: LoginClient,
    disconnects: DisconnectCalls,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    user = make_user("alice")
    browser = APIClient()
    device_id = browser.post(
        LOGIN, {"username": "alice", "password": PASSWORD, "session": True}
    ).json()["device"]["id"]
    assert browser.get(ME).status_code == 200
    phone, _, _ = login_client(user)
    with django_capture_on_commit_callbacks(execute=True):
        assert phone.delete(f"/api/v1/devices/{device_id}").status_code == 204
    response = browser.get(ME)
    assert response.status_code in (401, 403)
    assert_error(response, response.status_code, response.json()["error"]["code"])
    # The session is gone for good, not just refused once.
    assert browser.get(ME).status_code in (401, 403)
    assert disconnects.calls == [(user.pk, [device_id])]


def test_logout_revokes_the_token(
    login_client: LoginClient,
    disconnects: DisconnectCalls,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client, user, token = login_client()
    device = Device.objects.get(user=user)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(LOGOUT).status_code == 204
    assert_error(token_client(token).get(ME), 401, "authentication_failed")
    assert disconnects.calls == [(user.pk, [device.pk])]


def test_logout_of_a_session_ends_the_session(make_user: MakeUser) -> None:
    make_user("alice")
    browser = APIClient()
    token = browser.post(
        LOGIN, {"username": "alice", "password": PASSWORD, "session": True}
    ).json()["token"]
    assert browser.post(LOGOUT).status_code == 204
    assert browser.get(ME).status_code == 401
    assert token_client(token).get(ME).status_code == 401


def test_logout_without_credentials_is_refused(api: APIClient) -> None:
    assert_error(api.post(LOGOUT), 401, "not_authenticated")


def test_token_idle_too_long_stops_working(login_client: LoginClient) -> None:
    client, user, _ = login_client()
    stale = timezone.now() - timedelta(days=settings.DEVICE_TOKEN_IDLE_DAYS, minutes=1)
    Device.objects.filter(user=user).update(last_used_at=stale)
    assert_error(client.get(ME), 401, "authentication_failed")


def test_using_a_token_extends_its_life(login_client: LoginClient) -> None:
    client, user, _ = login_client()
    almost_stale = timezone.now() - timedelta(days=settings.DEVICE_TOKEN_IDLE_DAYS - 1)
    Device.objects.filter(user=user).update(last_used_at=almost_stale)
    assert client.get(ME).status_code == 200
    device = Device.objects.get(user=user)
    assert device.last_used_at > timezone.now() - timedelta(minutes=1)


def test_session_use_extends_its_device_life(make_user: MakeUser) -> None:
    make_user("alice")
    browser = APIClient()
    device_id = browser.post(
        LOGIN, {"username": "alice", "password": PASSWORD, "session": True}
    ).json()["device"]["id"]
    almost_stale = timezone.now() - timedelta(days=settings.DEVICE_TOKEN_IDLE_DAYS - 1)
    Device.objects.filter(pk=device_id).update(last_used_at=almost_stale)
    assert browser.get(ME).status_code == 200
    assert Device.objects.get(pk=device_id).last_used_at > timezone.now() - timedelta(minutes=1)


def test_deactivated_users_token_stops_working(login_client: LoginClient) -> None:
    client, user, _ = login_client()
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_error(client.get(ME), 401, "authentication_failed")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer two parts",
        "Bearer not-a-device-token",
        "Bearer dt_unknowntoken",
        "Token dt_" + "x" * 200,
        "bearer ",
    ],
)
def test_malformed_or_unknown_authorization_is_401_with_error_body(
    login_client: LoginClient, header: str
) -> None:
    login_client()
    response = APIClient().get(ME, HTTP_AUTHORIZATION=header)
    assert_error(response, 401, response.json()["error"]["code"])
    assert response.json()["error"]["code"] in ("authentication_failed", "not_authenticated")
    assert "WWW-Authenticate" in response.headers


def test_token_keyword_works_like_bearer(login_client: LoginClient) -> None:
    _, _, token = login_client()
    assert APIClient().get(ME, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_unknown_auth_scheme_is_not_authenticated(login_client: LoginClient) -> None:
    _, _, token = login_client()
    assert_error(APIClient().get(ME, HTTP_AUTHORIZATION=f"Basic {token}"), 401, "not_authenticated")


def test_admin_session_without_a_device_does_not_authenticate_the_api(make_user: MakeUser) -> None:
    user = make_user("alice")
    browser = Client()
    user.is_staff = True
    user.save()
    browser.force_login(user)
    assert browser.get(ME).status_code == 401
    # ... and does not log the browser out of the admin either.
    assert browser.get("/admin/").status_code == 200


def test_browser_session_writes_need_the_csrf_token(make_user: MakeUser) -> None:
    make_user("alice")
    bob = make_user("bob")
    browser = APIClient(enforce_csrf_checks=True)
    login = browser.post(LOGIN, {"username": "alice", "password": PASSWORD, "session": True})
    assert login.status_code == 200
    csrf_token = browser.cookies[settings.CSRF_COOKIE_NAME].value
    # A cross-site form post rides on the cookie but cannot know the CSRF token.
    assert_error(browser.post("/api/v1/contacts", {"user_id": bob.pk}), 403, "forbidden")
    response = browser.post("/api/v1/contacts", {"user_id": bob.pk}, HTTP_X_CSRFTOKEN=csrf_token)
    assert response.status_code == 201
