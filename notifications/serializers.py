"""Request and response shapes of the push REST API."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rest_framework import serializers

from .models import PushKind

P256_POINT_BYTES = 65
AUTH_SECRET_BYTES = 16


def _b64url_length(value: str) -> int | None:
    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        return None


class SubscriptionKeysSerializer(serializers.Serializer[Any]):
    p256dh = serializers.CharField(max_length=128, help_text="base64url P-256 public key.")
    auth = serializers.CharField(max_length=64, help_text="base64url 16-byte auth secret.")

    def validate_p256dh(self, value: str) -> str:
        if _b64url_length(value) != P256_POINT_BYTES:
            raise serializers.ValidationError("Must be a base64url uncompressed P-256 point.")
        return value

    def validate_auth(self, value: str) -> str:
        if _b64url_length(value) != AUTH_SECRET_BYTES:
            raise serializers.ValidationError("Must be 16 bytes, base64url-encoded.")
        return value


class WebPushSubscriptionSerializer(serializers.Serializer[Any]):
    """What the browser's ``PushSubscription.toJSON()`` returns (``expirationTime`` is
    accepted and ignored)."""

    endpoint = serializers.URLField(max_length=2048)
    keys = SubscriptionKeysSerializer()
    expirationTime = serializers.IntegerField(required=False, allow_null=True)  # noqa: N815
    # Which endpoints the server may contact is the service's decision
    # (notifications.endpoints): refused as invalid_push_subscription.


class RegisterSerializer(serializers.Serializer[Any]):
    # A plain string, not an enum: another "kind" enum (conversations) would collide in the
    # OpenAPI component names.
    kind = serializers.CharField(help_text="`fcm` (apps) or `webpush` (browsers).")
    token = serializers.CharField(
        required=False, max_length=4096, help_text="FCM registration token (kind fcm)."
    )
    subscription = WebPushSubscriptionSerializer(
        required=False, help_text="PushSubscription.toJSON() (kind webpush)."
    )

    def validate_kind(self, value: str) -> str:
        if value not in PushKind.values:
            raise serializers.ValidationError("Must be fcm or webpush.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == PushKind.FCM and not attrs.get("token"):
            raise serializers.ValidationError({"token": ["Required for kind fcm."]})
        if attrs["kind"] == PushKind.WEBPUSH and not attrs.get("subscription"):
            raise serializers.ValidationError({"subscription": ["Required for kind webpush."]})
        return attrs


class RegistrationSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    device_id = serializers.IntegerField()
    kind = serializers.CharField()
    address = serializers.CharField(help_text="The FCM token or the Web Push endpoint.")
    current = serializers.BooleanField(help_text="Registered by the device making this request.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class NotificationSettingsSerializer(serializers.Serializer[Any]):
    do_not_disturb = serializers.BooleanField(required=False, help_text="No message pushes at all.")
    show_preview = serializers.BooleanField(
        required=False, help_text="False: pushes say 'New message' instead of the text."
    )


class VapidKeySerializer(serializers.Serializer[Any]):
    public_key = serializers.CharField(
        help_text="applicationServerKey for PushManager.subscribe(): base64url P-256 point."
    )
