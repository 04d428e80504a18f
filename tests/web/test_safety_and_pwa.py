"""Message text is never interpreted as HTML; the app is an installable PWA whose shell
works offline; 64-bit ids survive JSON parsing in the browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Playwright, expect

from tests.e2e.conftest import ServerProcess

from .conftest import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS, ChatUser, api_sign_up

pytestmark = pytest.mark.browser

HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "<b>not bold</b> &amp; <a href=\"javascript:window.__pwned='link'\">click</a>",
    "javascript:window.__pwned='scheme' and https://example.com/?q=<i>x</i>",
]


def test_hostile_text_renders_as_text(open_user: Callable[..., ChatUser]) -> None:
    alice = open_user("alice", "Alice Martin")
    bob = open_user("bob", "Bob Chen")
    alice.press(alice.page.get_by_role("link", name="New chat", exact=True))
    alice.page.get_by_label("Find people").fill("bob")
    alice.press(alice.page.get_by_role("button", name="Message"))
    for text in HOSTILE:
        alice.send(text)
    bob.open_conversation("Alice Martin")

    for user in (alice, bob):
        texts = user.page.locator(".message .text")
        expect(texts).to_have_text(HOSTILE)
        messages = user.page.locator(".message-list")
        expect(messages.locator("img, script, b, i")).to_have_count(0)
        # The only link is the http(s) URL, cut where the markup starts, and it opens safely.
        links = messages.get_by_role("link")
        expect(links).to_have_count(1)
        expect(links).to_have_attribute("href", "https://example.com/?q=")
        expect(links).to_have_attribute("target", "_blank")
        assert user.page.evaluate("window.__pwned") is None
    # The conversation list preview is text too.
    expect(bob.conversation_item("Alice Martin").locator(".item-preview")).to_have_text(HOSTILE[-1])


def test_installable_and_shell_works_offline(
    playwright: Playwright, web_servers: list[ServerProcess], tmp_path: Path
) -> None:
    # Installability is never granted to incognito-like contexts: use a real profile.
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 800},
    )
    try:
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(web_servers[0].base_url + "/")
        alice = ChatUser(page=page, username="alice", display_name="Alice Martin", phone=False)
        alice.sign_up()
        state = page.evaluate(
            "navigator.serviceWorker.ready.then((registration) => registration.active.state)"
        )
        assert state in ("activating", "activated")

        cdp = context.new_cdp_session(page)
        manifest: dict[str, Any] = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == []
        installability: dict[str, Any] = cdp.send("Page.getInstallabilityErrors")
        assert installability["installabilityErrors"] == []

        # Without a network the service worker still serves the app, which says so.
        context.set_offline(True)
        page.reload()
        expect(page.locator("#loading")).to_contain_text("You are offline")
        context.set_offline(False)
        expect(page.get_by_role("link", name="New chat", exact=True)).to_be_visible()
    finally:
        context.close()


def test_large_ids_keep_every_digit(open_user: Callable[..., ChatUser]) -> None:
    """Snowflake ids are above 2^53; the app's JSON parsing keeps them exact as strings."""
    user = open_user("alice", "Alice Martin", sign_up=False)
    parsed = user.page.evaluate(
        """async () => {
            const json = await import("/static/app/js/json.js");
            const text = '{"id":252467485712842752,"seq":7,"s":"9007199254740993 in a string",'
                + '"ids":[-252467485712842753,1.5e300],"esc":"\\\\"123456789012345678"}';
            return [json.parseJSON(text), json.parseJSONFallback(text),
                    json.compareIds("252467485712842753", "252467485712842752")];
        }"""
    )
    expected = {
        "id": "252467485712842752",
        "seq": 7,
        "s": "9007199254740993 in a string",
        "ids": ["-252467485712842753", 1.5e300],
        "esc": '"123456789012345678',
    }
    assert parsed == [expected, expected, 1]


def tab_to(user: ChatUser, name: str, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the control called ``name`` has the focus."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(40):
        user.page.keyboard.press(key)
        focused = user.page.evaluate(
            "(() => { const el = document.activeElement;"
            " return el ? (el.getAttribute('aria-label') || el.textContent || '').trim() : ''; })()"
        )
        if focused == name:
            return
    raise AssertionError(f"{name!r} cannot be reached with {key}")


def test_keyboard_only(
    open_user: Callable[..., ChatUser], web_servers: list[ServerProcess]
) -> None:
    """Everything in a chat is reachable without a mouse, Edit/Delete included."""
    api_sign_up(web_servers[0], "bob", "Bob Chen")
    alice = open_user("alice", "Alice Martin")
    keyboard = alice.page.keyboard
    tab_to(alice, "New chat")
    keyboard.press("Enter")
    # The new-chat screen focuses its search box; keys typed before that would be lost.
    expect(alice.page.get_by_label("Find people")).to_be_focused()
    keyboard.type("bob")
    expect(alice.page.get_by_role("button", name="Message")).to_be_visible()
    tab_to(alice, "Message")
    keyboard.press("Enter")
    expect(alice.page.locator("#conversation-title")).to_have_text("Bob Chen")
    keyboard.type("typo here")
    keyboard.press("Enter")
    expect(alice.message("typo here").get_by_role("img", name="Sent")).to_be_visible()
    tab_to(alice, "Edit message", backwards=True)
    keyboard.press("Enter")
    keyboard.press("Control+A")
    keyboard.type("fixed")
    keyboard.press("Enter")
    expect(alice.page.locator(".message .text")).to_have_text(["fixed"])
    expect(alice.message("fixed")).to_contain_text("edited")
