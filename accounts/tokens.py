"""Device API tokens: generated once, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from .models import Device

TOKEN_PREFIX = "dt_"  # noqa: S105 -- a marker, not a secret
# last_used_at is refreshed at most this often, so authenticated requests do not each write.
LAST_USED_GRANULARITY = timedelta(minutes=5)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def device_for_token(raw: str) -> Device | None:
    """The usable device holding ``raw``; None if unknown, revoked, expired or its user inactive."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 100:
        return None
    device = Device.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
    if device is None or not device.is_usable:
        return None
    touch(device)
    return device


def touch(device: Device) -> None:
    now = timezone.now()
    if now - device.last_used_at > LAST_USED_GRANULARITY:
        Device.objects.filter(pk=device.pk).update(last_used_at=now)
        device.last_used_at = now
