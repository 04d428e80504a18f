"""What the web app shows cannot be spoofed with lookalike names or bidi tricks (issue 11,
item 6): user-supplied strings are isolated runs, a direct conversation names the other
person's @username, and international link hosts show in punycode."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .conftest import ChatUser

pytestmark = pytest.mark.browser

# "apple.com" with a Cyrillic first letter; the URL API gives its host as punycode.
LOOKALIKE_LINK = "https://\u0430pple.com/login?next=1"
PUNYCODE_LINK = "https://xn--pple-43d.com/login?next=1"
# A message that tries to reorder what follows it (right-to-left override, never closed).
OVERRIDE = "\u202eall is fine"
ISOLATED = """(selector) => {
  const run = document.querySelector(selector);
  return run !== null && getComputedStyle(run).unicodeBidi === "isolate";
}"""


def test_direct_conversations_show_the_username_and_links_show_punycode_hosts(
    open_user: Callable[..., ChatUser],
) -> None:
    alice = open_user("alice", "Alice Martin")
    # Bob calls himself "Alice Martin" too: the header's @username tells them apart.
    bob = open_user("bob", "Alice Martin")
    bob.press(bob.page.get_by_role("link", name="New chat", exact=True))
    bob.page.get_by_label("Find people").fill("alice")
    bob.press(bob.page.get_by_role("button", name="Message"))
    bob.send(f"log in at {LOOKALIKE_LINK} now")
    bob.send(OVERRIDE)
    bob.send("https://example.com/plain")

    alice.open_conversation("Alice Martin")
    page = alice.page
    expect(page.locator("#conversation-username")).to_have_text("@bob")
    expect(bob.page.locator("#conversation-username")).to_have_text("@alice")

    links = page.locator(".message-list").get_by_role("link")
    expect(links).to_have_count(2)
    expect(links.first).to_have_text(PUNYCODE_LINK)
    expect(links.first).to_have_attribute("href", PUNYCODE_LINK)
    expect(links.last).to_have_text("https://example.com/plain")  # ASCII hosts as typed

    # Every user-supplied string is an isolated run, so the override above stays inside
    # its own message and name.
    for selector in (
        "#conversation-title bdi",
        "#conversation-username bdi",
        ".message .text bdi",
        ".item-title bdi",
        ".item-preview bdi",
    ):
        # Waits for the condition (the header and list re-render as data arrives).
        page.wait_for_function(ISOLATED, arg=selector)
    expect(page.locator(".message .text bdi", has_text="all is fine")).to_have_count(1)
    for user in (alice, bob):
        assert user.errors == []
