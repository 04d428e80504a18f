"""Users, their logged-in devices (each with its own API token) and their contacts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from chatproject.text import validate_name

from . import usernames

UsernameConflict = Literal["taken", "confusable"]
USERNAME_CONFLICT_MESSAGES: dict[UsernameConflict, str] = {
    "taken": "That username is taken.",
    "confusable": "That username looks too much like an existing one.",
}


class UserManager(DjangoUserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> User:
        # Log-in by any case or width of the name: "ALICE" and fullwidth "alice" are alice.
        try:
            return self.get(username_key=usernames.key(username or ""))
        except self.model.DoesNotExist:
            # Accounts whose key could not be set (lookalikes created before keys existed).
            return self.get(username=username)

    def username_conflict(
        self, username: str, *, exclude_pk: int | None = None
    ) -> UsernameConflict | None:
        """Whether ``username`` is someone else's (in any case or width) or looks like it."""
        others = self.exclude(pk=exclude_pk) if exclude_pk is not None else self.all()
        if others.filter(username_key=usernames.key(username)).exists():
            return "taken"
        if others.filter(username_skeleton=usernames.skeleton(username)).exists():
            return "confusable"
        return None


class User(AbstractUser):
    username = models.CharField(
        "username",
        max_length=usernames.MAX_LENGTH,
        unique=True,
        validators=[usernames.validate_username],
        help_text="Letters, digits and @/./+/-/_, in one script; case does not matter.",
        error_messages={"unique": "A user with that username already exists."},
    )
    # Derived from username on every save (see usernames.py); unique, so two accounts can
    # differ neither by case or width (key) nor by lookalike characters (skeleton). NULL
    # only for lookalikes that existed before these columns (migration 0002 lists them).
    username_key = models.CharField(  # noqa: DJ001 (NULL, unlike "", is not unique)
        max_length=usernames.MAX_LENGTH, unique=True, null=True, editable=False
    )
    username_skeleton = models.CharField(  # noqa: DJ001 (as above)
        max_length=usernames.MAX_LENGTH, unique=True, null=True, editable=False
    )
    display_name = models.CharField(max_length=100, blank=True, validators=[validate_name])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()  # type: ignore[misc]

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

    def clean(self) -> None:
        super().clean()  # NFKC-normalizes the username
        if not isinstance(self.username, str) or usernames.username_problem(self.username):
            return  # the field's validator reports it
        conflict = User.objects.username_conflict(self.username, exclude_pk=self.pk)
        if conflict:
            raise ValidationError({"username": USERNAME_CONFLICT_MESSAGES[conflict]})

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, and when this changes the stored password hash (the admin's password form,
        ``manage.py changepassword``, ``set_password`` anywhere), log out every device.

        Comparing with the stored hash, not hooking ``set_password``, catches every path,
        including a hash assigned directly or a stale instance written back.
        """
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "username" in update_fields:
            self.username_key = usernames.key(self.username)
            self.username_skeleton = usernames.skeleton(self.username)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "username_key", "username_skeleton"}
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
