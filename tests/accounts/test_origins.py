"""accounts.origins.origin_allowed, case by case: an origin is ours only with the scheme,
host (one of ALLOWED_HOSTS) and port the request was made to, IPv6 literals included; and a
browser's WebSocket to an IPv6 address through the real ASGI application."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from rest_framework.test import APIClient

from accounts.origins import origin_allowed
from tests.conftest import PASSWORD

from .browser import browser_logged_in, first_ws_frame, session_cookie_header
from .helpers import MakeUser, assert_error


@pytest.mark.parametrize(
    ("origin", "scheme", "host", "allowed"),
    [
        ("http://localhost:8000", "http", "localhost:8000", True),
        ("HTTP://LocalHost:8000", "http", "localhost:8000", True),  # origins are case-blind
        ("http://localhost", "http", "localhost", True),
        ("http://localhost", "http", "localhost:8000", False),  # the default port is another
        ("http://localhost:8000", "http", "localhost", False),
        ("http://localhost:8001", "http", "localhost:8000", False),
        ("https://localhost:8000", "http", "localhost:8000", False),
        ("http://[::1]:8000", "http", "[::1]:8000", True),
        ("http://[::1]", "http", "[::1]", True),
        ("https://[::1]:8443", "https", "[::1]:8443", True),
        ("http://[::1]:9999", "http", "[::1]:8000", False),
        ("http://[::1]", "http", "[::1]:8000", False),
        ("http://[::2]:8000", "http", "[::2]:8000", False),  # not in ALLOWED_HOSTS
        ("http://[::1]:8000", "http", "localhost:8000", False),
        ("http://[::1:8000", "http", "[::1:8000", False),  # malformed
        ("http://localhost:8000", "http", None, False),
        ("null", "http", "localhost:8000", False),
    ],
)
def test_origin_is_ours_only_with_our_scheme_host_and_port(
    origin: str, scheme: str, host: str | None, allowed: bool
) -> None:
    assert origin_allowed(origin, scheme=scheme, host=host) is allowed


def test_a_trusted_origin_counts_whatever_the_host(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://[2001:db8::1]:8443", "https://*.example.org"]
    assert origin_allowed("https://[2001:db8::1]:8443", scheme="http", host="backend:8000")
    assert origin_allowed("https://chat.example.org", scheme="http", host=None)
    assert not origin_allowed("https://[2001:db8::1]", scheme="http", host="backend:8000")
    assert not origin_allowed("http://chat.example.org", scheme="http", host=None)


@pytest.mark.django_db(transaction=True)
async def test_websocket_to_an_ipv6_address_accepts_its_own_origin_only(
    make_user: MakeUser,
) -> None:
    await adb(make_user)("alice")
    cookie = session_cookie_header(await adb(browser_logged_in)())
    host = (b"host", b"[::1]:8000")

    accepted = await first_ws_frame([host, (b"origin", b"http://[::1]:8000"), cookie])
    assert accepted["type"] == "hello", accepted
    for other in (b"http://[::1]:9999", b"http://[::1]", b"https://[::1]:8000", b"http://[::1"):
        refused = await first_ws_frame([host, (b"origin", other), cookie])
        assert (refused["type"], refused["code"]) == ("error", "origin_not_allowed"), other


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["HTTP_ORIGIN", "HTTP_REFERER"])
def test_a_malformed_origin_or_referer_is_refused_not_an_error(
    make_user: MakeUser, header: str
) -> None:
    make_user("alice")
    malformed: dict[str, Any] = {header: "http://[::1/page"}
    response = APIClient().post(
        "/api/v1/auth/login",
        {"username": "alice", "password": PASSWORD, "session": True},
        **malformed,
    )
    assert_error(response, 403, "forbidden")
