"""The network drops while messages arrive: when it is back, every message shows exactly
once and in order, and what was typed offline is sent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, ServerProcess

from .conftest import ChatUser

pytestmark = pytest.mark.browser


def start_chat(alice: ChatUser, bob: ChatUser) -> None:
    alice.press(alice.page.get_by_role("link", name="New chat", exact=True))
    alice.page.get_by_label("Find people").fill(bob.username)
    alice.press(alice.page.get_by_role("button", name="Message"))
    alice.send("hello")
    bob.open_conversation(alice.display_name)
    expect(bob.message("hello")).to_be_visible()


@pytest.mark.parametrize("layout", ["desktop", "phone"])
def test_offline_then_online_shows_every_message_once_in_order(
    open_user: Callable[..., ChatUser], layout: str
) -> None:
    alice = open_user("alice", "Alice Martin")
    bob = open_user("bob", "Bob Chen", phone=layout == "phone")
    start_chat(alice, bob)

    bob.context.set_offline(True)
    expect(bob.page.locator("main .connection")).to_contain_text("You are offline")
    bob.send("typed while offline")
    expect(bob.message("typed while offline").get_by_role("img", name="Sending")).to_be_visible()

    missed = [f"missed {n}" for n in range(1, 7)]
    for text in missed:
        alice.send(text)
    expect(alice.message(missed[-1]).get_by_role("img", name="Sent")).to_be_visible()
    expect(bob.message("missed 1")).to_have_count(0)

    bob.context.set_offline(False)
    everything = ["hello", *missed, "typed while offline"]
    expect(bob.page.locator(".message .text")).to_have_text(everything)
    expect(bob.page.locator("main .connection")).to_be_hidden()
    expect(alice.page.locator(".message .text")).to_have_text(everything)
    # Nothing arrives twice, also not a moment later.
    bob.page.wait_for_timeout(500)
    expect(bob.page.locator(".message .text")).to_have_text(everything)
    expect(alice.message("typed while offline").locator(".meta")).to_be_visible()


def test_tabs_of_one_browser_stay_consistent(open_user: Callable[..., ChatUser]) -> None:
    """Reading in one tab clears the unread badge in the other tab of the same browser."""
    alice = open_user("alice", "Alice Martin")
    bob = open_user("bob", "Bob Chen")
    start_chat(alice, bob)
    bob.home()
    second_tab = bob.context.new_page()
    second_tab.goto(bob.page.url.split("#")[0] + "#/")
    other = ChatUser(page=second_tab, username="bob", display_name="Bob Chen", phone=False)
    # A new tab offers the accounts logged in on this browser.
    other.press(second_tab.get_by_role("button", name="Continue as Bob Chen"))
    bob.page.goto(bob.page.url.split("#")[0] + "#/settings")

    alice.send("are you there?")
    expect(other.conversation_item("Alice Martin").locator(".badge")).to_contain_text("1 unread")
    expect(bob.conversation_item("Alice Martin").locator(".badge")).to_contain_text("1 unread")
    bob.open_conversation("Alice Martin")
    expect(other.conversation_item("Alice Martin").locator(".badge")).to_have_count(0)
    expect(alice.message("are you there?").get_by_role("img", name="Read")).to_be_visible()


def test_server_restart_reconnects_and_sends_the_outbox(
    open_user: Callable[..., ChatUser], web_servers: list[ServerProcess]
) -> None:
    """The server goes away: the app says it is reconnecting, retries with backoff, and
    once the server is back sends what was typed meanwhile and receives what it missed."""
    alice = open_user("alice", "Alice Martin")
    bob = open_user("bob", "Bob Chen")
    start_chat(alice, bob)
    server = web_servers[0]  # Alice's server (on production Bob is on the other one)

    server.stop()
    expect(alice.page.locator("main .connection")).to_contain_text("Reconnecting")
    alice.send("written while the server was down")
    pending = alice.message("written while the server was down")
    expect(pending.get_by_role("img", name="Sending")).to_be_visible()
    server.start(migrate=False)

    expect(bob.message("written while the server was down")).to_be_visible(timeout=40_000)
    expect(alice.page.locator("main .connection")).to_be_hidden()
    bob.send("welcome back")
    expect(alice.page.locator(".message .text")).to_have_text(
        ["hello", "written while the server was down", "welcome back"]
    )


@pytest.mark.parametrize("layout", ["desktop", "phone"])
def test_away_longer_than_the_sync_window_reloads_and_shows_everything(
    open_user: Callable[..., ChatUser], web_servers: list[ServerProcess], layout: str
) -> None:
    """Bob's tab is offline while Alice writes, and the server prunes the sync queues
    meanwhile (as SYNC_RETENTION_DAYS would after a month away): back online, the app gets
    a reset sync page, reloads from history and shows every message once, in order."""
    alice = open_user("alice", "Alice Martin")
    bob = open_user("bob", "Bob Chen", phone=layout == "phone")
    start_chat(alice, bob)

    bob.context.set_offline(True)
    expect(bob.page.locator("main .connection")).to_contain_text("You are offline")
    missed = [f"missed {n}" for n in range(1, 4)]
    for text in missed:
        alice.send(text)
    expect(alice.message(missed[-1]).get_by_role("img", name="Sent")).to_be_visible()
    pruned = subprocess.run(
        [sys.executable, "manage.py", "prune_sync_queues", "--days", "0"],
        cwd=ROOT,
        env=web_servers[0].env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "pruned 0 " not in pruned.stdout, pruned.stdout

    bob.context.set_offline(False)
    everything = ["hello", *missed]
    expect(bob.page.locator(".message .text")).to_have_text(everything)
    expect(bob.page.locator("main .connection")).to_be_hidden()
    alice.send("after the reset")
    expect(bob.page.locator(".message .text")).to_have_text([*everything, "after the reset"])
    bob.page.wait_for_timeout(500)  # nothing arrives twice a moment later
    expect(bob.page.locator(".message .text")).to_have_text([*everything, "after the reset"])
