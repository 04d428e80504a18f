"""Browser tests of the built-in web app: Playwright driving Debian's Chromium against real
server processes (``manage.py serve``, started as in tests/e2e).

On the production configuration two server processes share PostgreSQL and Redis and each
user's browser talks to a different one, so every message crosses processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import ServerProcess, server_env  # noqa: F401  (fixture reused)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a long passphrase 42"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# How long a user waits for something to show up before the test calls it broken (generous:
# CI machines are small and the servers hash passwords at full production cost).
UI_TIMEOUT_MS = 20_000
PHONE = "Pixel 7"

expect.set_options(timeout=UI_TIMEOUT_MS)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        message = "Chromium is missing: apt-get install -y chromium (scripts/test does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def web_servers(
    server_env: dict[str, str],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> Iterator[list[ServerProcess]]:
    """One server on the embedded configuration, two on the production one."""
    env = dict(server_env)
    # Every test signs up several users from 127.0.0.1.
    env["THROTTLE_SIGNUP"] = "1000/hour"
    env["THROTTLE_LOGIN"] = "1000/min"
    count = 2 if env.get("DATABASE_URL") else 1
    started: list[ServerProcess] = []
    try:
        for index in range(count):
            server = ServerProcess(env, tmp_path / f"web-server{index}.log")
            server.start(migrate=index == 0)
            started.append(server)
        yield started
    finally:
        for server in started:
            server.stop()


@dataclass
class ChatUser:
    """One person in one browser context (a device), seen through what the page shows."""

    page: Page
    username: str
    display_name: str
    phone: bool
    # Uncaught script errors on the page: each test ends by checking there were none.
    errors: list[str] = field(default_factory=list)

    @property
    def context(self) -> BrowserContext:
        return self.page.context

    def press(self, locator: Locator) -> None:
        """Tap on a touch screen, click elsewhere."""
        if self.phone:
            locator.tap()
        else:
            locator.click()

    def sign_up(self) -> None:
        page = self.page
        self.press(page.get_by_role("tab", name="Sign up"))
        form = page.locator("#signup-form")
        form.get_by_label("Username").fill(self.username)
        form.get_by_label("Display name").fill(self.display_name)
        form.get_by_label("Password").fill(PASSWORD)
        self.press(form.get_by_role("button", name="Create account"))
        page.get_by_role("link", name="New chat", exact=True).wait_for()

    def home(self) -> None:
        """Back to the conversation list (on a phone it is a screen of its own)."""
        back = self.page.locator("main .back:visible")
        if self.phone and back.count():
            self.press(back.first)
        self.page.locator("#conversation-list").wait_for()

    def conversation_item(self, title: str) -> Locator:
        title_locator = self.page.locator(".item-title", has_text=title)
        return self.page.locator(".conversation-item", has=title_locator)

    def open_conversation(self, title: str) -> None:
        self.home()
        self.press(self.conversation_item(title))
        self.page.locator("#conversation-title", has_text=title).wait_for()

    def send(self, text: str) -> None:
        box = self.page.get_by_label("Message", exact=True)
        box.fill(text)
        if self.phone:
            self.press(self.page.get_by_role("button", name="Send"))
        else:
            box.press("Enter")

    def message_texts(self) -> list[str]:
        return self.page.locator(".message .text").all_inner_texts()

    def message(self, text: str) -> Locator:
        return self.page.locator(".message", has=self.page.locator(".text", has_text=text))

    def api_get(self, path: str) -> Any:
        """A REST call made by the page with the tab's own credentials (the app's client)."""
        return self.page.evaluate(
            "(path) => import('/static/app/js/api.js').then((module) => module.api.get(path))",
            path,
        )

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # Let transitions and late renders settle so the picture shows the final state.
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(SCREENSHOTS / name))


@pytest.fixture
def app_urls(web_servers: list[ServerProcess]) -> list[str]:
    """Where ``open_user`` opens the app, in turn (a test module may override this)."""
    return [server.base_url for server in web_servers]


@pytest.fixture
def open_user(
    browser: Browser, playwright: Playwright, app_urls: list[str]
) -> Iterator[Callable[..., ChatUser]]:
    """Opens the app for a new person in a fresh browser context (its own cookies)."""
    contexts: list[BrowserContext] = []
    users: list[ChatUser] = []
    count = iter(range(1_000))

    def open_(
        username: str,
        display_name: str,
        *,
        phone: bool = False,
        sign_up: bool = True,
        permissions: list[str] | None = None,
        init_script: str | None = None,
    ) -> ChatUser:
        # Alternate servers so that, on production, people sit on different processes.
        url = app_urls[next(count) % len(app_urls)]
        options: dict[str, Any] = (
            dict(playwright.devices[PHONE])
            if phone
            else {"viewport": {"width": 1280, "height": 800}}
        )
        context = browser.new_context(**options, locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(context)
        if permissions:
            context.grant_permissions(permissions, origin=url)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        user = ChatUser(page=page, username=username, display_name=display_name, phone=phone)
        page.on("pageerror", lambda error: user.errors.append(str(error)))
        page.goto(url + "/")
        users.append(user)
        if sign_up:
            user.sign_up()
        return user

    yield open_
    for context in contexts:
        context.close()
    assert [error for user in users for error in user.errors] == []


def api_sign_up(server: ServerProcess, username: str, display_name: str) -> dict[str, Any]:
    """A person who exists but is not watched in a browser (e.g. a third group member)."""
    response = httpx.post(
        server.base_url + "/api/v1/auth/signup",
        json={"username": username, "password": PASSWORD, "display_name": display_name},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
