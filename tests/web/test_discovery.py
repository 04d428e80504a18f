"""The web app connects where discovery says (``GET /api/v1/chat-servers/best``) and, when
that server drains (SIGTERM: close 4012), reconnects at once to another one and goes on
chatting. Needs several processes sharing the registry: production configuration only."""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, WebSocket, expect
from websockets.sync.client import connect

from bench.chaos.services import wait_until
from tests.e2e.conftest import ServerProcess

from .conftest import UI_TIMEOUT_MS, ChatUser, api_sign_up

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="processes share the registry through Redis"
)


@pytest.fixture
def two_servers(server_env: dict[str, str], tmp_path: Path) -> Iterator[list[ServerProcess]]:
    env = dict(server_env)
    env.update(
        THROTTLE_SIGNUP="1000/hour",
        CHAT_SERVER_REGISTRY_PREFIX=f"web-{secrets.token_hex(4)}",
        CHAT_SERVER_HEARTBEAT="0.5",
        DRAIN_TIMEOUT="10",
    )
    started = [ServerProcess(env, tmp_path / f"server{index}.log") for index in range(2)]
    # As in a deployment where every chat server accepts the web app's origin, and the
    # page may connect to each server's advertised URL (ws://localhost:<port>/ws/).
    env["CSRF_TRUSTED_ORIGINS"] = ",".join(server.base_url for server in started)
    env["WEB_SOCKET_ORIGINS"] = ",".join(f"ws://localhost:{server.port}" for server in started)
    try:
        for index, server in enumerate(started):
            server.start(migrate=index == 0)
        yield started
    finally:
        for server in started:
            server.stop()


def test_the_web_app_follows_discovery_and_moves_when_its_server_drains(
    browser: Browser, two_servers: list[ServerProcess]
) -> None:
    page_server, suggested = two_servers
    # Three sockets on the page's own server: the other one is the least loaded.
    busy = api_sign_up(page_server, "busy", "Busy Bee")
    holders = [
        connect(page_server.ws_url, additional_headers={"Authorization": f"Bearer {busy['token']}"})
        for _ in range(3)
    ]
    for holder in holders:
        assert orjson.loads(holder.recv(timeout=10))["type"] == "hello"
    bob = api_sign_up(page_server, "bob", "Bob Chen")

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    sockets: list[WebSocket] = []
    # (A lambda: Playwright cannot wrap a builtin method as a handler.)
    page.on("websocket", lambda socket: sockets.append(socket))  # noqa: PLW0108
    page.goto(page_server.base_url + "/")
    alice = ChatUser(page=page, username="alice", display_name="Alice Martin", phone=False)
    page.on("pageerror", lambda error: alice.errors.append(str(error)))
    alice.sign_up()

    def ports() -> list[int | None]:
        page.wait_for_timeout(100)  # Playwright delivers page events only inside its calls
        return [urlsplit(socket.url).port for socket in sockets]

    wait_until(lambda: suggested.port in ports(), "the app connected to the suggested server")
    assert ports()[-1] == suggested.port
    expect(page.locator("main .connection")).to_be_hidden()

    # The suggested server drains: the tab is sent to the other one and stays usable.
    assert suggested.process is not None
    suggested.process.send_signal(signal.SIGTERM)
    wait_until(lambda: ports()[-1] == page_server.port, "the app moved to the other server")
    alice.press(page.get_by_role("link", name="New chat", exact=True))
    page.get_by_label("Find people").fill("bob")
    alice.press(page.get_by_role("button", name="Message"))
    expect(page.locator("#conversation-title")).to_have_text("Bob Chen")
    alice.send("Still here after the deploy")
    sent = alice.message("Still here after the deploy").get_by_role("img", name="Sent")
    expect(sent).to_be_visible()
    # Stored: Bob's conversation list shows it.
    listed = httpx.get(
        page_server.base_url + "/api/v1/conversations",
        headers={"Authorization": f"Bearer {bob['token']}"},
    ).json()
    assert listed["results"][0]["last_message"]["text"] == "Still here after the deploy"
    for holder in holders:
        holder.close()
    context.close()
    assert alice.errors == []
