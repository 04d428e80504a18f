"""Users, their logged-in devices (each with its own API token) and their contacts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone


class User(AbstractUser):
    display_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
        ]

    # Set by accounts.services.change_password for the next save: the device the user
    # changed their own password from stays logged in. Not a database field.
    device_kept_on_password_change: int | None = None

    @property
    def name(self) -> str:
        return self.display_name or self.username

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, and when this changes the stored password hash (the admin's password form,
        ``manage.py changepassword``, ``set_password`` anywhere), log out every device.

        Comparing with the stored hash, not hooking ``set_password``, catches every path,
        including a hash assigned directly or a stale instance written back.
        """
        update_fields = kwargs.get("update_fields")
        writes_password = not self._state.adding and (
            update_fields is None or "password" in update_fields
        )
        keep_device_id, self.device_kept_on_password_change = (
            self.device_kept_on_password_change,
            None,
        )
        with transaction.atomic():
            stored_hash = (
                User._base_manager.filter(pk=self.pk).values_list("password", flat=True).first()
                if writes_password
                else None
            )
            super().save(*args, **kwargs)
            if stored_hash is not None and stored_hash != self.password:
                from . import services

                # Whoever knew the old password may hold a token or an open socket.
                services.revoke_all_devices(self, except_device_id=keep_device_id)

    def __str__(self) -> str:
        return self.username


class Platform(models.TextChoices):
    WEB = "web", "Web browser"
    ANDROID = "android", "Android"
    IOS = "ios", "iOS"
    DESKTOP = "desktop", "Desktop"
    OTHER = "other", "Other"


class Device(models.Model):
    """One logged-in client (an app install or a browser). Holds the hash of its API token.

    Sync cursors and push registrations hang off the device, so each of a user's devices
    catches up and gets notified on its own.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices"
    )
    name = models.CharField(max_length=100)
    platform = models.CharField(max_length=16, choices=Platform.choices, default=Platform.OTHER)
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(
        max_length=12, help_text="First characters of the token, to tell tokens apart."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.platform})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.last_used_at < now - timedelta(days=settings.DEVICE_TOKEN_IDLE_DAYS)

    @property
    def is_usable(self) -> bool:
        return not self.is_revoked and not self.is_expired() and self.user.is_active


class Contact(models.Model):
    """``owner`` keeps ``contact`` in their contact list (one direction)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_links"
    )
    contact = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "contact"], name="accounts_contact_unique"),
            models.CheckConstraint(
                condition=~models.Q(owner=models.F("contact")), name="accounts_contact_not_self"
            ),
        ]
        indexes = [models.Index(fields=["contact"])]

    def __str__(self) -> str:
        return f"{self.owner} -> {self.contact}"
