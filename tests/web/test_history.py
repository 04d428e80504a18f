"""Long conversations: history loads upwards as the user scrolls, long texts arrive as a
preview with the whole text a tap away, and the composer counts down near the limit."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ServerProcess

from .conftest import ChatUser, api_sign_up

pytestmark = pytest.mark.browser

HISTORY = 120
MAX_TEXT = 99_999


def test_history_scrolls_up_long_texts_and_counter(
    open_user: Callable[..., ChatUser], web_servers: list[ServerProcess]
) -> None:
    server = web_servers[0]
    alice = api_sign_up(server, "alice", "Alice Martin")
    bob = open_user("bob", "Bob Chen")
    with httpx.Client(
        base_url=server.base_url + "/api/v1/",
        headers={"Authorization": f"Bearer {alice['token']}"},
    ) as client:
        conversation = client.post(
            "conversations", json={"kind": "direct", "user_id": bob_id(bob)}
        ).json()
        for n in range(1, HISTORY + 1):
            response = client.post(
                f"conversations/{conversation['id']}/messages",
                json={"client_msg_id": f"seed-{n}", "text": f"history {n}"},
            )
            assert response.status_code == 201, response.text

        bob.open_conversation("Alice Martin")
        texts = bob.page.locator(".message .text")
        expect(texts.last).to_have_text(f"history {HISTORY}")
        beginning = bob.page.get_by_text("This is the beginning of the conversation.")
        expect(beginning).to_be_hidden()
        for _ in range(10):
            bob.page.locator(".messages").evaluate("(element) => { element.scrollTop = 0; }")
            bob.page.wait_for_timeout(300)
            if beginning.is_visible():
                break
        expect(beginning).to_be_visible()
        expect(texts).to_have_text([f"history {n}" for n in range(1, HISTORY + 1)])

        # A long text arrives live as a preview; the whole text is one tap away.
        long_text = "0123456789" * 500
        client.post(
            f"conversations/{conversation['id']}/messages",
            json={"client_msg_id": "long", "text": long_text},
        )
    show = bob.page.get_by_role("button", name="Show the whole message")
    expect(show).to_be_visible()
    bob.press(show)
    expect(texts.last).to_have_text(long_text)
    expect(show).to_have_count(0)

    # Near the limit the composer counts down; over it, sending is impossible.
    box = bob.page.get_by_label("Message", exact=True)
    counter = bob.page.locator("#composer-counter")
    box.fill("x" * (MAX_TEXT - 10))
    expect(counter).to_have_text("10 left")
    expect(bob.page.get_by_role("button", name="Send")).to_be_enabled()
    box.fill("x" * (MAX_TEXT + 2))
    expect(counter).to_have_text("2 too many")
    expect(bob.page.get_by_role("button", name="Send")).to_be_disabled()
    box.press("Enter")
    expect(texts.last).to_have_text(long_text)


def bob_id(bob: ChatUser) -> int:
    me: dict[str, int] = bob.api_get("me")
    return me["id"]
