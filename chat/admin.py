"""Moderation: conversations, memberships and (with the Django message store) messages.

Every write here goes through the same services as a member's REST or WebSocket request,
so members' devices get the same events, live and in their sync queues, and the same
rules hold (at most MAX_GROUP_MEMBERS members, direct conversations fixed). The moderator
is the ``actor_id`` of those events. What has no service is read-only: a conversation's
kind, creator and roles; a direct conversation's name and members. Conversations are not
created or deleted here. Deleting a message goes through the user's delete service: it
leaves a tombstone and propagates live to every member's devices.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from accounts.models import User
from chat.models import Conversation, ConversationKind, Membership
from chat.services import conversations as conversation_service
from chat.services import messages as message_service
from chat.store.models import StoredMessageRecord
from chatproject.errors import ServiceError


def _is_group(conversation: Conversation | None) -> bool:
    return conversation is not None and conversation.kind == ConversationKind.GROUP


class MembershipInline(admin.TabularInline[Membership, Conversation]):
    """Existing memberships are read-only; a group's moderator adds rows (a user) and ticks
    rows for deletion, which ConversationAdmin.save_formset turns into service calls."""

    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    fields = ("user", "role", "muted", "last_read_id", "unread_count", "joined_at")
    # A newcomer joins as a member, as through add_members; there is no role service.
    readonly_fields = ("role", "muted", "last_read_id", "unread_count", "joined_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_group(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_group(obj) and super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            kwargs["queryset"] = User.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin[Conversation]):
    list_display = ("id", "kind", "name", "created_at", "last_message_id")
    list_filter = ("kind",)
    search_fields = ("name", "memberships__user__username")
    inlines = [MembershipInline]
    fields = ("kind", "name", "created_by", "direct_key", "created_at", "last_message_id")
    readonly_fields = ("kind", "created_by", "direct_key", "created_at", "last_message_id")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        return readonly if _is_group(obj) else (*readonly, "name")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # groups are created by their owner; direct conversations by use

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a hard delete would drop memberships without telling anyone

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The view runs in one transaction: a refusal by a service (group full, blank
        # name) rolls back every change of the submission, events included.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:
            self.message_user(request, f"Nothing was changed: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(
        self, request: HttpRequest, obj: Conversation, form: ModelForm[Conversation], change: bool
    ) -> None:
        if change and _is_group(obj) and "name" in form.changed_data:
            conversation_service.rename_group(
                _moderator(request), obj.pk, obj.name, by_moderator=True
            )

    def save_formset(
        self,
        request: HttpRequest,
        form: ModelForm[Conversation],
        formset: BaseInlineFormSet[Any, Any, Any],
        change: bool,
    ) -> None:
        conversation = form.instance
        # Saves nothing: sorts the rows into new and deleted ones (for the change log too).
        formset.save(commit=False)
        if formset.model is not Membership or not _is_group(conversation):
            return
        moderator = _moderator(request)
        # Removals first, so that a full group can swap a member in one submission.
        for membership in formset.deleted_objects:
            conversation_service.remove_member(
                moderator, conversation.pk, membership.user_id, by_moderator=True
            )
        added = [membership.user_id for membership in formset.new_objects]
        if added:
            conversation_service.add_members(moderator, conversation.pk, added, by_moderator=True)


def _moderator(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):  # the admin site admits only logged-in staff
        raise PermissionDenied
    return user


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

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # only "delete for everyone": a hard delete leaves gaps in history
