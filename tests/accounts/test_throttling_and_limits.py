"""Brute-force log-in throttling and oversize request bodies."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import User
from tests.conftest import PASSWORD

from .helpers import LoginClient, MakeUser, assert_error

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
ALLOWED = 10  # THROTTLE_LOGIN default: 10/min


def test_repeated_wrong_passwords_get_rate_limited(api: APIClient, make_user: MakeUser) -> None:
    make_user("alice")
    for _ in range(ALLOWED):
        assert api.post(LOGIN, {"username": "alice", "password": "guess"}).status_code == 401
    response = api.post(LOGIN, {"username": "alice", "password": "guess"})
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    # Even the right password is refused until the window passes.
    assert_error(api.post(LOGIN, {"username": "alice", "password": PASSWORD}), 429, "rate_limited")


def test_one_username_from_many_addresses_gets_rate_limited(make_user: MakeUser) -> None:
    make_user("alice")
    for attempt in range(ALLOWED):
        client = APIClient(REMOTE_ADDR=f"10.0.0.{attempt + 1}")
        assert client.post(LOGIN, {"username": "alice", "password": "guess"}).status_code == 401
    attacker = APIClient(REMOTE_ADDR="10.0.1.1")
    response = attacker.post(LOGIN, {"username": "ALICE ", "password": PASSWORD})
    assert_error(response, 429, "rate_limited")
    assert "Retry-After" in response.headers
    # Someone else logging in from a fresh address is not affected.
    make_user("bob")
    assert (
        APIClient(REMOTE_ADDR="10.0.2.1")
        .post(LOGIN, {"username": "bob", "password": PASSWORD})
        .status_code
        == 200
    )


def test_many_usernames_from_one_address_get_rate_limited(make_user: MakeUser) -> None:
    make_user("alice")
    client = APIClient(REMOTE_ADDR="10.9.9.9")
    for attempt in range(ALLOWED):
        # A forged X-Forwarded-For must not give each attempt a fresh address.
        response = client.post(
            LOGIN,
            {"username": f"user-{attempt}", "password": "guess"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}",
        )
        assert response.status_code == 401
    response = client.post(
        LOGIN, {"username": "alice", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="192.0.2.200"
    )
    assert_error(response, 429, "rate_limited")


def _oversize_json(fields: dict[str, object]) -> str:
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    return json.dumps({**fields, "padding": padding})


def test_oversize_signup_body_is_refused_and_nothing_is_written(api: APIClient) -> None:
    body = _oversize_json({"username": "alice", "password": PASSWORD})
    response = api.post("/api/v1/auth/signup", body, content_type="application/json")
    assert response.status_code in (400, 413)
    assert_error(response, response.status_code, response.json()["error"]["code"])
    assert not User.objects.filter(username="alice").exists()


def test_oversize_login_body_is_refused(api: APIClient, make_user: MakeUser) -> None:
    make_user("alice")
    body = _oversize_json({"username": "alice", "password": PASSWORD})
    response = api.post(LOGIN, body, content_type="application/json")
    assert response.status_code in (400, 413)
    assert_error(response, response.status_code, response.json()["error"]["code"])


def test_oversize_form_body_is_refused(api: APIClient) -> None:
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    body = f"username=alice&password={PASSWORD}&padding={padding}"
    response = api.post(
        "/api/v1/auth/signup", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in (400, 413)
    assert_error(response, response.status_code, response.json()["error"]["code"])
    assert not User.objects.filter(username="alice").exists()


def test_oversize_profile_update_changes_nothing(login_client: LoginClient) -> None:
    client, user, _ = login_client()
    body = _oversize_json({"display_name": "New name"})
    response = client.patch("/api/v1/me", body, content_type="application/json")
    assert response.status_code in (400, 413)
    assert_error(response, response.status_code, response.json()["error"]["code"])
    user.refresh_from_db()
    assert user.display_name == ""


def test_body_just_under_the_limit_is_accepted(api: APIClient) -> None:
    fields = {"username": "alice", "password": PASSWORD, "padding": ""}
    overhead = len(json.dumps(fields))
    fields["padding"] = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE - overhead)
    body = json.dumps(fields)
    assert len(body) == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert api.post("/api/v1/auth/signup", body, content_type="application/json").status_code == 201


def test_malformed_json_is_a_documented_400(api: APIClient) -> None:
    response = api.post("/api/v1/auth/signup", "{not json", content_type="application/json")
    assert_error(response, 400, "malformed_request")
    assert not User.objects.exists()
