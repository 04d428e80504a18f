"""Conversations and memberships: the relational side of chat.

Messages and sync queues are not here: they live in the message store (chat.store).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ConversationKind(models.TextChoices):
    DIRECT = "direct", "Direct (1:1)"
    GROUP = "group", "Group"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Conversation(models.Model):
    kind = models.CharField(max_length=8, choices=ConversationKind.choices)
    name = models.CharField(max_length=100, blank=True)
    # "<smaller user id>:<larger user id>" for direct conversations, so there is one per pair.
    direct_key = models.CharField(max_length=41, unique=True, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Id of the newest message (ids are time-sortable); orders conversation lists. Not
    # indexed on purpose: every send updates it, and an index would turn each of those
    # updates into an index insert (no HOT update); lists sort a user's memberships.
    last_message_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return self.name or f"{self.kind} #{self.pk}"


class Membership(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    # Newest message id this user has read / has had delivered to one of their devices.
    last_read_id = models.BigIntegerField(default=0)
    last_delivered_id = models.BigIntegerField(default=0)
    # Maintained on send (+1 for every member but the sender) and recomputed on read, so a
    # conversation list costs no COUNT over history.
    unread_count = models.PositiveIntegerField(default=0)
    muted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="chat_membership_unique")
        ]
        indexes = [models.Index(fields=["user", "conversation"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id} ({self.role})"


class DeviceSyncState(models.Model):
    """Server-side copy of a device's sync cursor: the highest sequence number it confirmed."""

    device = models.OneToOneField(
        "accounts.Device", on_delete=models.CASCADE, primary_key=True, related_name="sync_state"
    )
    delivered_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"device {self.device_id} at seq {self.delivered_seq}"
