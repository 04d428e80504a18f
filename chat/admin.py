"""Moderation: conversations, memberships and (with the Django message store) messages.

Deleting a message here goes through the same service as a user's delete, so it leaves a
tombstone and propagates live to every member's devices.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from chat.models import Conversation, Membership
from chat.services import messages as message_service
from chat.store.models import StoredMessageRecord


class MembershipInline(admin.TabularInline[Membership, Conversation]):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    readonly_fields = ("last_read_id", "last_delivered_id", "unread_count", "joined_at")


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin[Conversation]):
    list_display = ("id", "kind", "name", "created_at", "last_message_id")
    list_filter = ("kind",)
    search_fields = ("name", "memberships__user__username")
    inlines = [MembershipInline]
    readonly_fields = ("direct_key", "created_at", "last_message_id")


@admin.register(StoredMessageRecord)
class MessageAdmin(admin.ModelAdmin[StoredMessageRecord]):
    list_display = (
        "id",
        "conversation_id",
        "sender_id",
        "short_text",
        "created_at",
        "edited_at",
        "deleted_at",
    )
    list_filter = ("deleted_at",)
    search_fields = ("=conversation_id", "=sender_id", "=id")
    show_full_result_count = False  # COUNT(*) over a huge history is slow
    actions = ["delete_for_everyone"]

    @admin.display(description="text")
    def short_text(self, record: StoredMessageRecord) -> str:
        return record.text[:80]

    @admin.action(description="Delete for everyone (leaves a tombstone)")
    def delete_for_everyone(
        self, request: HttpRequest, queryset: QuerySet[StoredMessageRecord]
    ) -> None:
        ids = list(queryset.values_list("id", flat=True)[:500])
        for message_id in ids:
            message_service.delete_message(user_id=None, message_id=message_id)
        self.message_user(request, f"Deleted {len(ids)} message(s).", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a hard delete would leave gaps in history and sync
        return actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
