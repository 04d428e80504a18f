"""The push REST API: registrations of this device, notification settings, the VAPID key."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ImproperlyConfigured
from py_vapid import Vapid
from rest_framework.test import APIClient

from notifications import vapid

from .conftest import Phone
from .receivers import PushServices

pytestmark = pytest.mark.django_db

PhoneFactory = Callable[..., Phone]


def test_web_client_gets_the_vapid_key_without_logging_in(push_env: PushServices) -> None:
    response = APIClient().get("/api/v1/push/vapid-key")

    assert response.status_code == 200
    key = response.json()["public_key"]
    point = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(point) == 65
    assert point[0] == 4  # uncompressed P-256 point, what PushManager.subscribe() takes
    assert key == push_env.vapid_public_key  # the key the push service sees in VAPID headers


def test_generated_vapid_key_is_kept_across_restarts(settings: Any, tmp_path: Any) -> None:
    settings.DATA_DIR = tmp_path
    settings.VAPID_PRIVATE_KEY = ""
    vapid.server_key.cache_clear()
    try:
        first = vapid.public_key()
        vapid.server_key.cache_clear()  # a restart
        assert vapid.public_key() == first
        assert (tmp_path / vapid.KEY_FILE_NAME).stat().st_mode & 0o077 == 0  # private file
    finally:
        vapid.server_key.cache_clear()


def test_configured_vapid_key_is_used_and_a_mismatched_public_key_refused(
    settings: Any, tmp_path: Any
) -> None:
    configured = Vapid()
    configured.generate_keys()
    raw = configured.private_key.private_numbers().private_value.to_bytes(32, "big")
    settings.DATA_DIR = tmp_path
    settings.VAPID_PRIVATE_KEY = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    vapid.server_key.cache_clear()
    try:
        expected = vapid.b64url(
            configured.public_key.public_bytes(
                serialization.Encoding.X962,
                serialization.PublicFormat.UncompressedPoint,
            )
        )
        assert vapid.public_key() == expected
        assert not (tmp_path / vapid.KEY_FILE_NAME).exists()

        settings.VAPID_PUBLIC_KEY = "not-the-matching-key"
        vapid.server_key.cache_clear()
        with pytest.raises(ImproperlyConfigured):
            vapid.public_key()
    finally:
        vapid.server_key.cache_clear()


def test_register_replace_list_and_remove_this_devices_registration(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    browser = phone("bob", "browser", platform="web")
    laptop = phone(browser.user, "laptop")

    first = browser.register_webpush(push_env.new_subscription("old"))
    response = browser.api.post(
        "/api/v1/push/registrations",
        {"kind": "webpush", "subscription": push_env.new_subscription("new").as_json()},
        format="json",
    )
    assert response.status_code == 200  # replaced, not added: one address per device
    assert response.json()["id"] == first["id"]
    laptop.register_fcm("fcm-laptop")

    listed = browser.api.get("/api/v1/push/registrations").json()
    assert [(r["kind"], r["current"]) for r in listed] == [("webpush", True), ("fcm", False)]
    assert "/wp/new-" in listed[0]["address"]

    assert browser.api.delete(f"/api/v1/push/registrations/{first['id']}").status_code == 204
    assert [r["kind"] for r in laptop.api.get("/api/v1/push/registrations").json()] == ["fcm"]


def test_the_same_token_from_a_new_login_moves_instead_of_pushing_twice(
    phone: PhoneFactory,
) -> None:
    old_login = phone("bob", "pixel")
    new_login = phone(old_login.user, "pixel again")  # app reinstalled, same FCM token
    old_login.register_fcm("fcm-same-phone")

    moved = new_login.register_fcm("fcm-same-phone")

    listed = new_login.api.get("/api/v1/push/registrations").json()
    assert [r["id"] for r in listed] == [moved["id"]]
    assert listed[0]["device_id"] == new_login.device_id


def test_cannot_remove_another_users_registration(phone: PhoneFactory) -> None:
    bob, mallory = phone("bob"), phone("mallory")
    registration = bob.register_fcm("fcm-bob")

    response = mallory.api.delete(f"/api/v1/push/registrations/{registration['id']}")

    assert response.status_code == 404
    assert len(bob.api.get("/api/v1/push/registrations").json()) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "fcm"}, "token"),
        ({"kind": "webpush"}, "subscription"),
        ({"kind": "apns", "token": "x"}, "kind"),
        (
            {
                "kind": "webpush",
                "subscription": {
                    "endpoint": "https://push.example/1",
                    "keys": {"p256dh": "dG9vIHNob3J0", "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
                },
            },
            "subscription.keys.p256dh",
        ),
    ],
)
def test_invalid_registrations_are_refused_with_the_field_named(
    phone: PhoneFactory, body: dict[str, Any], field: str
) -> None:
    response = phone("bob").api.post("/api/v1/push/registrations", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]


def test_plain_http_endpoints_are_refused_in_production(
    phone: PhoneFactory, push_env: PushServices, settings: Any
) -> None:
    # The server POSTs to whatever endpoint is registered; only https leaves the box.
    settings.PUSH_ALLOW_HTTP_ENDPOINTS = False
    subscription = push_env.new_subscription("insecure").as_json()

    response = phone("bob").api.post(
        "/api/v1/push/registrations",
        {"kind": "webpush", "subscription": subscription},
        format="json",
    )

    assert response.status_code == 400
    assert "subscription.endpoint" in response.json()["error"]["fields"]


def test_notification_settings_default_and_update(phone: PhoneFactory) -> None:
    bob = phone("bob")

    assert bob.api.get("/api/v1/push/settings").json() == {
        "do_not_disturb": False,
        "show_preview": True,
    }
    response = bob.api.patch("/api/v1/push/settings", {"show_preview": False}, format="json")
    assert response.json() == {"do_not_disturb": False, "show_preview": False}
    assert bob.api.get("/api/v1/push/settings").json()["show_preview"] is False
    assert APIClient().get("/api/v1/push/settings").status_code in (401, 403)
