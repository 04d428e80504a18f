"""Push registrations and notification settings: what the REST endpoints change, and
which registrations may still receive anything."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Device, User
from chatproject.errors import NotFound

from . import endpoints
from .models import NotificationSettings, PushKind, PushRegistration, address_digest


def usable_registrations() -> QuerySet[PushRegistration]:
    """Registrations of devices that may still receive anything: a logged-out, revoked or
    expired device must not get message previews."""
    fresh = timezone.now() - timedelta(days=settings.DEVICE_TOKEN_IDLE_DAYS)
    return PushRegistration.objects.filter(
        device__revoked_at__isnull=True, device__last_used_at__gte=fresh, user__is_active=True
    )


def register(
    device: Device, *, kind: str, address: str, p256dh: str = "", auth: str = ""
) -> PushRegistration:
    """Set this device's push address (replacing its previous one). An address registered
    by another device moves here: it is the same app install or browser, logged in again,
    and must not be pushed twice. A Web Push endpoint must be one the server may contact."""
    if kind == PushKind.WEBPUSH:
        endpoints.check_subscription(address, p256dh=p256dh, auth=auth)
    digest = address_digest(address)
    with transaction.atomic():
        PushRegistration.objects.filter(address_hash=digest).exclude(device=device).delete()
        registration, _ = PushRegistration.objects.update_or_create(
            device=device,
            defaults={
                "user_id": device.user_id,
                "kind": kind,
                "address": address,
                "address_hash": digest,
                "p256dh": p256dh if kind == PushKind.WEBPUSH else "",
                "auth": auth if kind == PushKind.WEBPUSH else "",
            },
        )
    return registration


def registrations_of(user: User) -> QuerySet[PushRegistration]:
    return PushRegistration.objects.filter(user=user, device__revoked_at__isnull=True).order_by(
        "pk"
    )


def unregister(user: User, registration_id: int) -> None:
    deleted, _ = PushRegistration.objects.filter(pk=registration_id, user=user).delete()
    if not deleted:
        raise NotFound("No such push registration.")


def settings_of(user: User) -> NotificationSettings:
    found = NotificationSettings.objects.filter(user=user).first()
    return found if found is not None else NotificationSettings(user=user)


def update_settings(
    user: User, *, do_not_disturb: bool | None = None, show_preview: bool | None = None
) -> NotificationSettings:
    changes: dict[str, bool] = {}
    if do_not_disturb is not None:
        changes["do_not_disturb"] = do_not_disturb
    if show_preview is not None:
        changes["show_preview"] = show_preview
    preferences, _ = NotificationSettings.objects.update_or_create(user=user, defaults=changes)
    return preferences
