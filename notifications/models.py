"""Push registrations (one per device), per-user notification settings, and the per
(device, message) delivery record that keeps one message from being pushed twice."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models


class PushKind(models.TextChoices):
    FCM = "fcm", "Firebase Cloud Messaging (Android/iOS apps)"
    WEBPUSH = "webpush", "Web Push (browsers)"


def address_digest(address: str) -> str:
    """Unique key of a push address (FCM token or Web Push endpoint), which can be longer
    than an index entry should be."""
    return hashlib.sha256(address.encode()).hexdigest()


class PushRegistration(models.Model):
    """Where to push for one device: an FCM registration token or a Web Push subscription.

    One per device (an app install or a browser has one address); a device that registers
    again replaces its address. The same address is never registered twice: a reinstalled
    app that logs in again takes its token over from the old device, so the phone is not
    pushed twice.
    """

    device = models.OneToOneField(
        "accounts.Device", on_delete=models.CASCADE, related_name="push_registration"
    )
    # Denormalised from the device: the fan-out selects registrations by recipient user ids.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_registrations"
    )
    kind = models.CharField(max_length=8, choices=PushKind.choices)
    # FCM: the registration token. Web Push: the subscription's endpoint URL.
    address = models.TextField()
    address_hash = models.CharField(max_length=64, unique=True)
    # Web Push only: the subscription's keys (base64url), for RFC 8291 payload encryption.
    p256dh = models.CharField(max_length=128, blank=True)
    auth = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["user"])]

    def __str__(self) -> str:
        return f"{self.kind} for device {self.device_id}"


class NotificationSettings(models.Model):
    """A user's push preferences (a missing row means the defaults)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="notification_settings",
    )
    # No message pushes at all (clearing updates still go out: they only remove things).
    do_not_disturb = models.BooleanField(default=False)
    # False: pushes say "New message" instead of showing the text (lock-screen privacy).
    show_preview = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notification settings of {self.user_id}"


class PushDelivery(models.Model):
    """One message claimed for one registration. The unique pair is what guarantees "one
    message never produces two pushes on one device", across task retries, redeliveries
    and the offline and unacknowledged paths racing each other. ``claim`` is the id of the
    task that inserted the row (a redelivered task recognises its own claims); ``sent_at``
    is set once the push service accepted the push, so a redelivered send task skips it;
    ``cleared_at`` once a read elsewhere sent the device a clearing update for it. Rows are
    pruned after ``PUSH_DELIVERY_RETENTION_HOURS``.
    """

    registration = models.ForeignKey(
        PushRegistration, on_delete=models.CASCADE, related_name="deliveries"
    )
    message_id = models.BigIntegerField()
    # Which notification the device shows: reading the conversation clears only devices
    # that were pushed something of it (a silent push to a device showing nothing costs
    # battery, and browsers may show a "site updated in the background" notice for it).
    conversation_id = models.BigIntegerField(default=0)
    claim = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registration", "message_id"], name="notifications_delivery_unique"
            )
        ]
        indexes = [
            models.Index(fields=["created_at"]),
            models.Index(fields=["conversation_id", "registration"]),
        ]
        verbose_name_plural = "push deliveries"

    def __str__(self) -> str:
        return f"message {self.message_id} to registration {self.registration_id}"
