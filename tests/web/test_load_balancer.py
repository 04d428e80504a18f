"""Two people chat in the web app opened at nginx's address (deploy/nginx/chat.conf), one
on a desktop, one on a phone. On the production configuration three processes stand
behind nginx: the two browsers' sockets land on different ones, and one of those is
killed while they chat."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from bench.chaos.services import wait_until
from chat.registry.redis import RedisRegistry
from tests.e2e.nginx import (  # noqa: F401  (load_balanced: a fixture)
    Balanced,
    load_balanced,
    several_processes,
    sockets_per_process,
)

from .conftest import ChatUser

pytestmark = pytest.mark.browser


@pytest.fixture
def front(
    load_balanced: Callable[..., Balanced],  # noqa: F811
    server_env: dict[str, str],
) -> Balanced:
    server_env.update(
        CHAT_SERVER_REGISTRY_PREFIX=f"web-lb-{secrets.token_hex(4)}",
        CHAT_SERVER_HEARTBEAT="0.3",
        CHAT_SERVER_TTL="2",
    )
    return load_balanced()


@pytest.fixture
def app_urls(front: Balanced) -> list[str]:
    return [front.url]


def _sockets_per_process(server_env: dict[str, str]) -> dict[int | None, int]:
    """The processes holding sockets, and how many."""
    registry = RedisRegistry(server_env["CHAT_SERVER_REGISTRY_PREFIX"])
    return {port: count for port, count in sockets_per_process(registry).items() if count}


def test_two_people_chat_through_the_balancer(
    open_user: Callable[..., ChatUser], front: Balanced, server_env: dict[str, str]
) -> None:
    alice = open_user("alice", "Alice Martin")
    bob = open_user("bob", "Bob Chen", phone=True)
    if several_processes():
        wait_until(
            lambda: sorted(_sockets_per_process(server_env).values()) == [1, 1],
            "the two browsers' sockets on two different processes",
        )

    alice.press(alice.page.get_by_role("link", name="New chat", exact=True))
    alice.page.get_by_label("Find people").fill("bob")
    alice.press(alice.page.get_by_role("button", name="Message"))
    alice.send("Hi Bob, this went through nginx")
    item = bob.conversation_item("Alice Martin")
    expect(item).to_contain_text("Hi Bob, this went through nginx")
    bob.open_conversation("Alice Martin")
    expect(alice.message("this went through nginx").get_by_role("img", name="Read")).to_be_visible()
    expect(alice.page.locator("#conversation-subtitle")).to_have_text("online")
    expect(bob.page.locator("#conversation-subtitle")).to_have_text("online")
    bob.send("And so did this")
    expect(alice.message("And so did this")).to_be_visible()

    if not several_processes():
        return
    # One of the two processes holding their sockets dies; both apps carry on through
    # nginx (the dropped one reconnects to another process and syncs).
    victim = next(s for s in front.servers if s.pid in _sockets_per_process(server_env))
    victim_pid = victim.pid
    victim.kill()
    alice.send("Still there after the crash?")
    expect(bob.message("Still there after the crash?")).to_be_visible()
    bob.send("Yes, still here")
    expect(alice.message("Yes, still here")).to_be_visible()
    expect(
        alice.message("Still there after the crash?").get_by_role("img", name="Read")
    ).to_be_visible()
    expect(alice.page.locator("#conversation-subtitle")).to_have_text("online")
    wait_until(
        lambda: (
            victim_pid not in _sockets_per_process(server_env)
            and sum(_sockets_per_process(server_env).values()) == 2
        ),
        "both sockets on the remaining processes",
    )
