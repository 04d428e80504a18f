"""Cross-site requests: log-in CSRF on the session-starting endpoints, and the WebSocket
Origin check, which compares the full origin (scheme, host and port)."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Device, User
from chatproject.asgi import application
from tests.conftest import PASSWORD

from .helpers import MakeUser, assert_error

LOGIN = "/api/v1/auth/login"
SIGNUP = "/api/v1/auth/signup"
ME = "/api/v1/me"
SESSION_LOGIN = {"username": "alice", "password": PASSWORD, "session": "true"}

# --- log-in and sign-up --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_ORIGIN": "http://testserver:9999"},  # same host, another port
        {"HTTP_ORIGIN": "https://testserver"},  # same host, another scheme
        {"HTTP_ORIGIN": "null"},  # sandboxed frame, data: URL
        {"HTTP_REFERER": "https://evil.example/page.html"},
        {},  # a form that starts a session, with neither header to vouch for it
    ],
    ids=["other-site", "other-port", "other-scheme", "null", "referer", "no-origin"],
)
def test_cross_site_form_post_cannot_log_in(make_user: MakeUser, headers: dict[str, Any]) -> None:
    make_user("alice")
    browser = Client()
    response = browser.post(LOGIN, SESSION_LOGIN, **headers)
    assert_error(response, 403, "forbidden")
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies
    assert not Device.objects.exists()
    assert browser.get(ME).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [{"HTTP_ORIGIN": "https://evil.example"}, {"HTTP_REFERER": "http://evil.example/"}, {}],
    ids=["other-site", "referer", "no-origin"],
)
def test_cross_site_form_post_cannot_sign_up(headers: dict[str, Any]) -> None:
    body = {"username": "mallory", "password": PASSWORD, "session": "true"}
    response = Client().post(SIGNUP, body, **headers)
    assert_error(response, 403, "forbidden")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_cross_site_json_login_is_refused(make_user: MakeUser) -> None:
    make_user("alice")
    response = APIClient().post(
        LOGIN,
        {"username": "alice", "password": PASSWORD, "session": True},
        HTTP_ORIGIN="https://evil.example",
    )
    assert_error(response, 403, "forbidden")


@pytest.mark.django_db
def test_same_origin_browser_log_in_and_sign_up_work(make_user: MakeUser) -> None:
    make_user("alice")
    browser = APIClient()
    login = browser.post(
        LOGIN,
        {"username": "alice", "password": PASSWORD, "session": True},
        HTTP_ORIGIN="http://testserver",
        HTTP_REFERER="http://testserver/",
    )
    assert login.status_code == 200
    assert browser.get(ME).status_code == 200
    # A form from our own pages is fine too.
    form = Client().post(
        SIGNUP,
        {"username": "bob", "password": PASSWORD, "session": "true"},
        HTTP_ORIGIN="http://testserver",
    )
    assert form.status_code == 201


@pytest.mark.django_db
def test_an_origin_in_csrf_trusted_origins_may_log_in(make_user: MakeUser, settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    make_user("alice")
    response = Client().post(LOGIN, SESSION_LOGIN, HTTP_ORIGIN="https://app.example.com")
    assert response.status_code == 200


@pytest.mark.django_db
def test_apps_without_cookies_or_origin_keep_logging_in(make_user: MakeUser) -> None:
    make_user("alice")
    app = APIClient()
    assert app.post(LOGIN, {"username": "alice", "password": PASSWORD}).status_code == 200
    # A form-encoded app request that starts no session is not a browser form attack.
    form = Client().post(LOGIN, {"username": "alice", "password": PASSWORD})
    assert form.status_code == 200
    signup = app.post(SIGNUP, {"username": "bob", "password": PASSWORD})
    assert signup.status_code == 201


# --- WebSocket Origin ----------------------------------------------------------------------


def _session_cookie() -> str:
    browser = APIClient()
    response = browser.post(
        LOGIN,
        {"username": "alice", "password": PASSWORD, "session": True},
        HTTP_ORIGIN="http://testserver",
    )
    assert response.status_code == 200
    return str(browser.cookies[django_settings.SESSION_COOKIE_NAME].value)


async def _open(headers: list[tuple[bytes, bytes]]) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    socket = WebsocketCommunicator(application, "/ws/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket, await socket.receive_json_from()


async def _assert_refused(headers: list[tuple[bytes, bytes]], code: str, close: int) -> None:
    socket, frame = await _open(headers)
    assert frame["type"] == "error"
    assert frame["code"] == code
    assert (await socket.receive_output())["code"] == close


async def _assert_accepted(headers: list[tuple[bytes, bytes]]) -> None:
    socket, frame = await _open(headers)
    assert frame["type"] == "hello", frame
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:9999",  # another port of an allowed host
        "https://localhost:8000",  # another scheme
        "http://localhost",  # the default port is another port
        "http://evil.example:8000",
        "null",
    ],
)
async def test_websocket_session_from_another_origin_is_refused(
    make_user: MakeUser, origin: str
) -> None:
    await adb(make_user)("alice")
    cookie = await adb(_session_cookie)()
    headers = [
        (b"host", b"localhost:8000"),
        (b"origin", origin.encode()),
        (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    await _assert_refused(headers, "origin_not_allowed", 4003)


@pytest.mark.django_db(transaction=True)
async def test_websocket_session_from_its_own_origin_is_accepted(make_user: MakeUser) -> None:
    await adb(make_user)("alice")
    cookie = await adb(_session_cookie)()
    session = (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode())
    await _assert_accepted(
        [(b"host", b"localhost:8000"), (b"origin", b"http://localhost:8000"), session]
    )
    await _assert_accepted([(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), session])


@pytest.mark.django_db(transaction=True)
async def test_websocket_host_must_be_allowed_for_its_origin_to_count(make_user: MakeUser) -> None:
    # DNS rebinding: evil.example resolves to the server; its pages are not ours.
    await adb(make_user)("alice")
    cookie = await adb(_session_cookie)()
    headers = [
        (b"host", b"evil.example"),
        (b"origin", b"http://evil.example"),
        (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    await _assert_refused(headers, "origin_not_allowed", 4003)


@pytest.mark.django_db(transaction=True)
async def test_websocket_origin_in_csrf_trusted_origins_is_accepted(
    make_user: MakeUser, settings: Any
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "https://*.example.org"]
    await adb(make_user)("alice")
    cookie = await adb(_session_cookie)()
    session = (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode())
    # Behind a TLS proxy the socket itself is plain ws:// on an internal host.
    await _assert_accepted(
        [(b"host", b"backend:8000"), (b"origin", b"https://chat.example.com"), session]
    )
    await _assert_accepted([(b"origin", b"https://web.example.org"), session])
    await _assert_refused(
        [(b"origin", b"http://chat.example.com"), session], "origin_not_allowed", 4003
    )


@pytest.mark.django_db(transaction=True)
async def test_websocket_behind_a_tls_proxy_has_an_https_origin(
    make_user: MakeUser, settings: Any
) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    await adb(make_user)("alice")
    cookie = await adb(_session_cookie)()
    session = (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode())
    page = [(b"host", b"localhost"), (b"origin", b"https://localhost"), session]
    await _assert_accepted([*page, (b"x-forwarded-proto", b"https")])
    await _assert_refused(page, "origin_not_allowed", 4003)
