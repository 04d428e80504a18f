"""A browser's WebSocket is authenticated by its session exactly as its REST requests are
(django.contrib.auth.get_user): a SECRET_KEY rotation with the old key in
SECRET_KEY_FALLBACKS logs nobody out, a password change or a dropped key does. Through the
real ASGI application."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from rest_framework.test import APIClient

from .browser import browser_logged_in, first_ws_frame, session_cookie_header
from .helpers import MakeUser

pytestmark = pytest.mark.django_db(transaction=True)

OLD_KEY = "old-secret-key-" + "o" * 40
NEW_KEY = "new-secret-key-" + "n" * 40


async def _first_frame(browser: APIClient) -> dict[str, Any]:
    return await first_ws_frame(
        [
            (b"host", b"localhost:8000"),
            (b"origin", b"http://localhost:8000"),
            session_cookie_header(browser),
        ]
    )


async def test_a_session_signed_under_a_fallback_key_still_opens_a_websocket(
    make_user: MakeUser, settings: Any
) -> None:
    settings.SECRET_KEY = OLD_KEY
    await adb(make_user)("alice")
    browser = await adb(browser_logged_in)()

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]

    frame = await _first_frame(browser)
    assert frame["type"] == "hello", frame
    # The socket left the stored session alone: the browser's REST requests go on (and
    # Django rotates the session there, where the answer can carry the new cookie).
    assert (await adb(browser.get)("/api/v1/me")).status_code == 200
    assert (await _first_frame(browser))["type"] == "hello"


async def test_a_session_of_a_dropped_key_is_refused(make_user: MakeUser, settings: Any) -> None:
    settings.SECRET_KEY = OLD_KEY
    await adb(make_user)("alice")
    browser = await adb(browser_logged_in)()

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, []

    frame = await _first_frame(browser)
    assert (frame["type"], frame["code"]) == ("error", "not_authenticated")


async def test_a_session_from_before_a_password_change_is_refused(
    make_user: MakeUser, settings: Any
) -> None:
    settings.SECRET_KEY = OLD_KEY
    alice = await adb(make_user)("alice")
    browser = await adb(browser_logged_in)()
    assert (await _first_frame(browser))["type"] == "hello"

    alice.set_password("a-new-long-passphrase-37")
    await adb(alice.save)()
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]

    frame = await _first_frame(browser)
    assert (frame["type"], frame["code"]) == ("error", "not_authenticated")
