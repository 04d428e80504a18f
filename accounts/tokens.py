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
    return devices_for_tokens([raw])[0]


def devices_for_tokens(raws: list[str]) -> list[Device | None]:
    """``device_for_token`` for many tokens in one query (a storm of reconnecting sockets)."""
    hashes = {
        raw: hash_token(raw) for raw in raws if raw.startswith(TOKEN_PREFIX) and len(raw) <= 100
    }
    found = (
        {
            device.token_hash: device
            for device in Device.objects.select_related("user").filter(
                token_hash__in=set(hashes.values())
            )
        }
        if hashes
        else {}
    )
    now = timezone.now()
    stale: set[int] = set()
    devices: list[Device | None] = []
    for raw in raws:
        device = found.get(hashes.get(raw, ""))
        if device is None or not device.is_usable:
            devices.append(None)
            continue
        if now - device.last_used_at > LAST_USED_GRANULARITY:
            stale.add(device.pk)
            device.last_used_at = now
        devices.append(device)
    if stale:
        Device.objects.filter(pk__in=stale).update(last_used_at=now)
    return devices


def touch(device: Device) -> None:
    now = timezone.now()
    if now - device.last_used_at > LAST_USED_GRANULARITY:
        Device.objects.filter(pk=device.pk).update(last_used_at=now)
        device.last_used_at = now
