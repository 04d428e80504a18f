"""A browser in the accounts tests: logged in with a session, opening WebSockets with its
cookie through the real ASGI application."""

from __future__ import annotations

from typing import Any

from channels.testing import WebsocketCommunicator
from django.conf import settings
from rest_framework.test import APIClient

from chatproject.asgi import application
from tests.conftest import PASSWORD


def browser_logged_in(username: str = "alice") -> APIClient:
    browser = APIClient()
    response = browser.post(
        "/api/v1/auth/login",
        {"username": username, "password": PASSWORD, "session": True},
        HTTP_ORIGIN="http://testserver",
    )
    assert response.status_code == 200
    return browser


def session_cookie_header(browser: APIClient) -> tuple[bytes, bytes]:
    value = browser.cookies[settings.SESSION_COOKIE_NAME].value
    return b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode()


async def first_ws_frame(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The first frame a socket opened with ``headers`` gets (hello or error)."""
    socket = WebsocketCommunicator(application, "/ws/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    frame: dict[str, Any] = await socket.receive_json_from()
    await socket.disconnect()
    return frame
