"""Brute-force log-in throttling and oversize request bodies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

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


def _fail_from(address: str, username: str = "alice", **headers: Any) -> int:
    client = APIClient(REMOTE_ADDR=address)
    response = client.post(LOGIN, {"username": username, "password": "guess"}, **headers)
    return int(response.status_code)


def _log_in_from(address: str, username: str = "alice", **headers: Any) -> Any:
    return APIClient(REMOTE_ADDR=address).post(
        LOGIN, {"username": username, "password": PASSWORD}, **headers
    )


def test_an_attacker_cannot_lock_the_owner_out_from_a_clean_address(make_user: MakeUser) -> None:
    make_user("alice")
    for _ in range(ALLOWED):
        assert _fail_from("10.6.6.6") == 401
    # The attacker's address is locked out, even with the right password ...
    assert_error(_log_in_from("10.6.6.6"), 429, "rate_limited")
    # ... but alice, from an address that has not failed, still logs in.
    assert _log_in_from("10.1.1.1").status_code == 200


def test_one_username_from_many_addresses_gets_rate_limited(make_user: MakeUser) -> None:
    make_user("alice")
    attackers = [f"10.0.0.{n + 1}" for n in range(ALLOWED)]
    for address in attackers:
        assert _fail_from(address) == 401
    # The account has seen too many failures: every address that took part is refused,
    # whatever it sends, and in any spelling of the username.
    for address in attackers:
        response = APIClient(REMOTE_ADDR=address).post(
            LOGIN, {"username": "ALICE ", "password": PASSWORD}
        )
        assert_error(response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) > 0
    # A fresh address gets one guess; once it has failed it is refused too.
    assert _fail_from("10.0.1.1") == 401
    assert_error(_log_in_from("10.0.1.1"), 429, "rate_limited")
    # The owner, from a clean address, logs in; other accounts are not affected.
    assert _log_in_from("10.0.2.1").status_code == 200
    make_user("bob")
    assert _log_in_from("10.0.0.1", "bob").status_code == 200


def test_successful_log_ins_do_not_use_up_an_address_budget(make_user: MakeUser) -> None:
    make_user("alice")
    for _ in range(ALLOWED + 2):
        assert _log_in_from("10.3.3.3").status_code == 200
    for _ in range(ALLOWED):
        assert _fail_from("10.3.3.3") == 401
    assert_error(_log_in_from("10.3.3.3"), 429, "rate_limited")


def test_num_proxies_makes_the_forwarded_client_address_count(
    make_user: MakeUser, settings: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    make_user("alice")
    proxy = "10.0.0.1"
    for _ in range(ALLOWED):
        assert _fail_from(proxy, HTTP_X_FORWARDED_FOR="203.0.113.5") == 401
    # The client that failed is locked out (a forged earlier hop does not help it) ...
    response = _log_in_from(proxy, HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.5")
    assert_error(response, 429, "rate_limited")
    # ... while another client behind the same proxy logs in.
    assert _log_in_from(proxy, HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 200


def test_num_proxies_is_read_from_the_environment() -> None:
    script = "from django.conf import settings; print(settings.REST_FRAMEWORK['NUM_PROXIES'])"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatproject.settings"}
    for value, expected in (("2", "2"), (None, "0")):
        environment.pop("NUM_PROXIES", None)
        if value is not None:
            environment["NUM_PROXIES"] = value
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); " + script],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.strip() == expected


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
