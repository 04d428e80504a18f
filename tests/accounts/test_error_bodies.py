"""Every error the accounts API returns has the documented body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

from .helpers import LoginClient, MakeUser, assert_error_shape

pytestmark = pytest.mark.django_db


def test_every_error_response_has_the_documented_shape(
    make_user: MakeUser, login_client: LoginClient
) -> None:
    make_user("alice")
    client, user, _ = login_client()
    anonymous = APIClient()
    oversize = '{"username": "x", "padding": "' + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + '"}'
    requests: list[tuple[str, Callable[[], Any]]] = [
        ("no credentials", lambda: anonymous.get("/api/v1/me")),
        ("bad token", lambda: APIClient().get("/api/v1/me", HTTP_AUTHORIZATION="Bearer dt_nope")),
        (
            "malformed header",
            lambda: APIClient().get("/api/v1/me", HTTP_AUTHORIZATION="Bearer a b c"),
        ),
        ("missing fields", lambda: anonymous.post("/api/v1/auth/signup", {})),
        ("nested-free validation", lambda: client.patch("/api/v1/me", {"display_name": "x" * 500})),
        (
            "taken",
            lambda: anonymous.post(
                "/api/v1/auth/signup", {"username": "ALICE", "password": PASSWORD}
            ),
        ),
        (
            "weak",
            lambda: anonymous.post("/api/v1/auth/signup", {"username": "zed", "password": "123"}),
        ),
        (
            "bad login",
            lambda: anonymous.post("/api/v1/auth/login", {"username": "alice", "password": "x"}),
        ),
        ("unknown user", lambda: client.get("/api/v1/users/999999")),
        ("unknown device", lambda: client.delete("/api/v1/devices/999999")),
        ("self contact", lambda: client.post("/api/v1/contacts", {"user_id": user.pk})),
        ("not a contact", lambda: client.delete("/api/v1/contacts/999999")),
        ("wrong method", lambda: client.put("/api/v1/me", {})),
        ("wrong method on login", lambda: anonymous.get("/api/v1/auth/login")),
        (
            "bad json",
            lambda: anonymous.post("/api/v1/auth/login", "{", content_type="application/json"),
        ),
        (
            "media type",
            lambda: anonymous.post("/api/v1/auth/login", "x", content_type="text/plain"),
        ),
        (
            "oversize",
            lambda: anonymous.post(
                "/api/v1/auth/signup", oversize, content_type="application/json"
            ),
        ),
        (
            "wrong old password",
            lambda: client.post(
                "/api/v1/auth/password", {"old_password": "x", "new_password": "y"}
            ),
        ),
    ]
    seen_statuses = set()
    for label, send in requests:
        response = send()
        assert 400 <= response.status_code < 500, (label, response.status_code)
        assert response["Content-Type"].startswith("application/json"), label
        assert_error_shape(response)
        seen_statuses.add(response.status_code)
    # Throttled requests too.
    for _ in range(11):
        response = APIClient(REMOTE_ADDR="10.1.1.1").post(
            "/api/v1/auth/login", {"username": "alice", "password": "x"}
        )
    assert response.status_code == 429
    assert_error_shape(response)
    assert {400, 401, 404, 405, 409, 415} <= seen_statuses
