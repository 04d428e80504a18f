"""Two people chat through the web app, 1:1 and in a group, on a desktop and on a phone."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ServerProcess

from .conftest import ChatUser, api_sign_up

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("layout", ["desktop", "phone"])
def test_direct_and_group_chat(
    open_user: Callable[..., ChatUser], web_servers: list[ServerProcess], layout: str
) -> None:
    phone = layout == "phone"
    alice = open_user("alice", "Alice Martin", phone=phone)
    bob = open_user("bob", "Bob Chen", phone=phone)
    api_sign_up(web_servers[0], "carol", "Carol Diaz")

    # Alice finds Bob and writes to him.
    alice.press(alice.page.get_by_role("link", name="New chat", exact=True))
    alice.page.get_by_label("Find people").fill("bob")
    alice.press(alice.page.get_by_role("button", name="Message"))
    expect(alice.page.locator("#conversation-title")).to_have_text("Bob Chen")
    alice.send("Hi Bob! Are you around?")
    expect(alice.message("Hi Bob! Are you around?").get_by_role("img", name="Sent")).to_be_visible()

    # Bob sees a new conversation with one unread message, opens it; Alice sees it read.
    item = bob.conversation_item("Alice Martin")
    expect(item).to_contain_text("Hi Bob! Are you around?")
    expect(item.locator(".badge")).to_contain_text("1 unread")
    bob.open_conversation("Alice Martin")
    expect(bob.message("Hi Bob! Are you around?")).to_be_visible()
    expect(alice.message("Hi Bob! Are you around?").get_by_role("img", name="Read")).to_be_visible()
    bob.home()
    expect(bob.conversation_item("Alice Martin").locator(".badge")).to_have_count(0)
    bob.open_conversation("Alice Martin")

    # Each sees the other online; Alice sees Bob typing until his message arrives.
    expect(alice.page.locator("#conversation-subtitle")).to_have_text("online")
    expect(bob.page.locator("#conversation-subtitle")).to_have_text("online")
    if not phone:
        dot = alice.conversation_item("Bob Chen").get_by_role("img", name="online")
        expect(dot).to_be_visible()

    # Shift+Enter makes a new line; Enter (or, on a phone, the Send button) sends.
    box = bob.page.get_by_label("Message", exact=True)
    box.fill("Yes!")
    expect(alice.page.locator("#typing-indicator")).to_have_text("Bob Chen is typing…")
    box.press("Shift+Enter")
    box.type("What's up?")
    if phone:
        bob.press(bob.page.get_by_role("button", name="Send"))
    else:
        box.press("Enter")
    expect(alice.message("What's up?")).to_contain_text("Yes!\nWhat's up?")
    expect(alice.page.locator("#typing-indicator")).to_have_text("")

    # Alice edits and then deletes her first message; Bob sees both changes live.
    alice.send("Lunch at 12?")
    expect(bob.message("Lunch at 12?")).to_be_visible()
    alice.press(alice.message("Lunch at 12?").locator(".bubble"))
    alice.press(alice.message("Lunch at 12?").get_by_role("button", name="Edit message"))
    alice.page.get_by_label("Message", exact=True).fill("Lunch at 12:30?")
    alice.page.get_by_label("Message", exact=True).press("Enter")
    expect(bob.message("Lunch at 12:30?")).to_contain_text("edited")
    alice.press(alice.message("Hi Bob! Are you around?").locator(".bubble"))
    first = alice.message("Hi Bob! Are you around?")
    alice.press(first.get_by_role("button", name="Delete message"))
    alice.press(alice.page.get_by_role("button", name="Delete", exact=True))
    expect(bob.page.locator(".message .text.deleted")).to_have_text("This message was deleted")
    expect(bob.message("Hi Bob! Are you around?")).to_have_count(0)
    if not phone:
        alice.screenshot("desktop-direct.png")

    # Alice creates a group with Bob and Carol.
    alice.home()
    alice.press(alice.page.get_by_role("link", name="New group", exact=True))
    alice.page.get_by_label("Group name").fill("Weekend trip")
    for name in ("bob", "carol"):
        alice.page.get_by_label("Add members").fill(name)
        alice.press(alice.page.locator(".user-search").get_by_role("button", name="Add"))
        expect(alice.page.locator(".chips")).to_contain_text(name.title())
    alice.press(alice.page.get_by_role("button", name="Create group"))
    expect(alice.page.locator("#conversation-title")).to_have_text("Weekend trip")
    expect(alice.page.locator("#conversation-subtitle")).to_have_text(re.compile(r"^3 members"))
    alice.send("Who's in for Saturday? https://example.com/plan")

    bob.open_conversation("Weekend trip")
    message = bob.message("Who's in for Saturday?")
    expect(message.locator(".sender")).to_have_text("Alice Martin")
    link = message.get_by_role("link", name="https://example.com/plan")
    expect(link).to_have_attribute("href", "https://example.com/plan")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    bob.send("Me! Count me in.")
    expect(alice.message("Count me in").locator(".sender")).to_have_text("Bob Chen")
    expect(alice.page.locator(".read-by")).to_have_text("Read by Bob Chen")

    # Group info: Alice renames the group and removes Carol; Bob sees both.
    alice.press(alice.page.get_by_role("link", name="Conversation info"))
    expect(alice.page.get_by_role("list", name="Members")).to_contain_text("Carol Diaz")
    alice.page.get_by_label("Group name").fill("Saturday hike")
    alice.press(alice.page.get_by_role("button", name="Rename"))
    alice.press(alice.page.get_by_role("button", name="Remove Carol Diaz"))
    alice.press(alice.page.get_by_role("button", name="Remove", exact=True))
    expect(alice.page.get_by_role("list", name="Members")).not_to_contain_text("Carol Diaz")
    expect(bob.page.locator("#conversation-title")).to_have_text("Saturday hike")
    expect(bob.page.locator("#conversation-subtitle")).to_have_text(re.compile(r"^2 members"))
    alice.press(alice.page.get_by_role("link", name="Back to the conversation"))
    expect(alice.page.locator("#conversation-title")).to_have_text("Saturday hike")

    if phone:
        bob.screenshot("phone-group.png")
        bob.home()
        bob.screenshot("phone-list.png")
    else:
        bob.screenshot("desktop-group.png")

    # Bob leaves the group: it disappears from his list; Alice sees one member left.
    bob.open_conversation("Saturday hike")
    bob.press(bob.page.get_by_role("link", name="Conversation info"))
    bob.press(bob.page.get_by_role("button", name="Leave group"))
    bob.press(bob.page.get_by_role("button", name="Leave", exact=True))
    expect(bob.conversation_item("Saturday hike")).to_have_count(0)
    expect(bob.conversation_item("Alice Martin")).to_be_visible()
    expect(alice.page.locator("#conversation-subtitle")).to_have_text("1 member")


def test_two_windows_of_one_browser_are_two_people(
    open_user: Callable[..., ChatUser],
) -> None:
    """The README's first steps: two users sign up in two windows of the same browser."""
    alice = open_user("alice", "Alice Martin")
    window = alice.context.new_page()
    window.goto(alice.page.url.split("#")[0])
    bob = ChatUser(page=window, username="bob", display_name="Bob Chen", phone=False)
    expect(window.get_by_role("button", name="Continue as Alice Martin")).to_be_visible()
    bob.sign_up()
    alice.press(alice.page.get_by_role("link", name="New chat", exact=True))
    alice.page.get_by_label("Find people").fill("bob")
    alice.press(alice.page.get_by_role("button", name="Message"))
    alice.send("Two windows, two people")
    bob.open_conversation("Alice Martin")
    expect(bob.message("Two windows, two people")).to_be_visible()
    # Alice's window is still Alice after a reload.
    alice.page.reload()
    expect(alice.page.locator("#me-link")).to_contain_text("Alice Martin")
