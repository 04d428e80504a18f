"""Settings, contacts and devices: push notifications on this browser, do-not-disturb,
hiding presence, muting a conversation, managing contacts and logged-in devices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ServerProcess

from .conftest import PASSWORD, ChatUser, api_sign_up

pytestmark = pytest.mark.browser

# This machine has no route to a browser push service, so PushManager.subscribe() cannot
# succeed for real. Stand in for the push service only: everything from the permission
# prompt to the registration stored on the server runs as it would in a user's browser.
FAKE_PUSH_SERVICE = """
(() => {
  const key = (n) => btoa(String.fromCharCode(4, ...Array.from({ length: n - 1 }, (_, i) => i)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  let current = null;
  PushManager.prototype.getSubscription = async function () { return current; };
  PushManager.prototype.subscribe = async function (options) {
    window.__applicationServerKeyLength = new Uint8Array(options.applicationServerKey).length;
    current = {
      endpoint: "https://push.example.test/send/device-1",
      toJSON() {
        return { endpoint: this.endpoint, expirationTime: null,
                 keys: { p256dh: key(65), auth: key(16) } };
      },
      async unsubscribe() { current = null; return true; },
    };
    return current;
  };
})();
"""


def registrations(user: ChatUser) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = user.api_get("push/registrations")
    return result


def test_notifications_and_privacy_settings(open_user: Callable[..., ChatUser]) -> None:
    alice = open_user(
        "alice", "Alice Martin", permissions=["notifications"], init_script=FAKE_PUSH_SERVICE
    )
    page = alice.page
    alice.press(page.get_by_role("link", name="Settings", exact=True))

    push = page.get_by_label("Notifications on this device")
    push.check()
    expect(push).to_be_checked()
    expect(push).to_be_enabled()
    (registration,) = registrations(alice)
    assert registration["kind"] == "webpush"
    assert registration["address"] == "https://push.example.test/send/device-1"
    assert registration["current"] is True
    # Subscribed with the server's VAPID key (an uncompressed P-256 point).
    assert page.evaluate("window.__applicationServerKeyLength") == 65

    page.get_by_label("Do not disturb").check()
    page.get_by_label("Hide when I am online").check()
    expect(page.get_by_label("Hide when I am online")).to_be_enabled()
    page.reload()
    expect(page.get_by_label("Do not disturb")).to_be_checked()
    expect(page.get_by_label("Hide when I am online")).to_be_checked()
    expect(page.get_by_label("Notifications on this device")).to_be_checked()
    expect(page.get_by_label("Show message text in notifications")).to_be_checked()

    page.get_by_label("Notifications on this device").uncheck()
    expect(page.get_by_label("Notifications on this device")).to_be_enabled()
    assert registrations(alice) == []


def test_contacts_devices_and_mute(
    open_user: Callable[..., ChatUser], web_servers: list[ServerProcess]
) -> None:
    alice = open_user("alice", "Alice Martin")
    api_sign_up(web_servers[0], "bob", "Bob Chen")
    page = alice.page

    # Contacts: add Bob, then message him from the list.
    alice.press(page.get_by_role("link", name="Contacts", exact=True))
    page.get_by_label("Add a contact").fill("bob")
    alice.press(page.locator(".user-search").get_by_role("button", name="Add"))
    contacts = page.get_by_role("list", name="Contacts")
    expect(contacts).to_contain_text("Bob Chen")
    alice.press(contacts.get_by_role("button", name="Message"))
    expect(page.locator("#conversation-title")).to_have_text("Bob Chen")

    # Mute the conversation from its info screen; the list says so.
    alice.press(page.get_by_role("link", name="Conversation info"))
    page.get_by_label("Mute notifications for this conversation").check()
    expect(alice.conversation_item("Bob Chen")).to_contain_text("(muted)")

    # Devices: a second log-in shows up and can be logged out from here.
    response = httpx.post(
        web_servers[0].base_url + "/api/v1/auth/login",
        json={"username": "alice", "password": PASSWORD, "device_name": "Alice's phone"},
    )
    assert response.status_code == 200, response.text
    alice.press(page.get_by_role("link", name="Settings", exact=True))
    alice.press(page.get_by_role("link", name="Devices you are logged in on"))
    devices = page.get_by_role("list", name="Devices")
    expect(devices.get_by_role("listitem")).to_have_count(2)
    expect(devices).to_contain_text("this browser")
    alice.press(devices.get_by_role("button", name="Log out Alice's phone"))
    alice.press(page.get_by_role("button", name="Log out", exact=True))
    expect(devices.get_by_role("listitem")).to_have_count(1)
    token = response.json()["token"]
    me = httpx.get(
        web_servers[0].base_url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert me.status_code == 401

    # Logging out this browser returns to the log-in screen.
    alice.press(page.get_by_role("link", name="Settings", exact=True))
    alice.press(page.get_by_role("button", name="Log out"))
    expect(page.get_by_role("tab", name="Log in")).to_be_visible()
