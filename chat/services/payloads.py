"""How stored messages and conversations look on the wire (REST and WebSocket alike)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings

from chat.models import Conversation, Membership
from chat.protocol import MessagePayload
from chat.store.base import StoredMessage


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def message_payload(message: StoredMessage, *, full: bool = True) -> MessagePayload:
    """``full=False`` (live events) cuts texts above LIVE_EVENT_FULL_TEXT_LIMIT to a preview,
    so a 99,999-character message to 100 members does not push 100 copies of ~400 KB
    through the fan-out path; the client fetches the body once it shows the message."""
    text = message.text
    truncated = False
    if not full and len(text) > settings.LIVE_EVENT_FULL_TEXT_LIMIT:
        text = text[: settings.LIVE_EVENT_FULL_TEXT_LIMIT]
        truncated = True
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "sender_id": message.sender_id,
        "client_msg_id": message.client_msg_id,
        "text": text,
        "length": len(message.text),
        "truncated": truncated,
        "created_at": iso(message.created_at) or "",
        "edited_at": iso(message.edited_at),
        "deleted": message.is_deleted,
    }


def conversation_payload(
    conversation: Conversation, *, member_ids: list[int] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": conversation.pk,
        "kind": conversation.kind,
        "name": conversation.name,
        "created_at": iso(conversation.created_at),
        "last_message_id": conversation.last_message_id or None,
    }
    if member_ids is not None:
        body["member_ids"] = member_ids
    return body


def membership_payload(membership: Membership) -> dict[str, Any]:
    return {
        "user_id": membership.user_id,
        "role": membership.role,
        "last_read_id": membership.last_read_id,
        "last_delivered_id": membership.last_delivered_id,
    }
