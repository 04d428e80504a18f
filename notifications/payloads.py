"""What a push carries: one documented payload (docs/protocol.md "Push notifications"),
sent as the Web Push body (JSON, encrypted) and as FCM ``data`` (every value a string), plus
the provider-specific options that make it collapse per conversation and set the badge.
"""

from __future__ import annotations

from typing import Any, TypedDict

from django.conf import settings

PAYLOAD_VERSION = 1
NO_PREVIEW_BODY = "New message"


class MessagePush(TypedDict):
    v: int
    type: str  # "message"
    conversation_id: int
    conversation_kind: str
    conversation_name: str
    sender_id: int
    sender_name: str
    message_id: str  # a string: ids exceed 2**53, which JSON.parse in a service worker rounds
    preview: str | None  # None when the user turned previews off
    title: str
    body: str
    badge: int
    tag: str


class ClearPush(TypedDict):
    v: int
    type: str  # "clear"
    conversation_id: int
    last_read_id: str
    badge: int
    tag: str


def conversation_tag(conversation_id: int) -> str:
    """Collapse key (FCM), notification tag and Web Push ``Topic`` of a conversation: a
    newer push replaces the older one instead of stacking. Topic allows only base64url
    characters and at most 32 of them."""
    return f"conv-{conversation_id}"


def preview_of(text: str) -> str:
    limit = settings.PUSH_PREVIEW_LENGTH
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_push(
    *,
    conversation_id: int,
    conversation_kind: str,
    conversation_name: str,
    sender_id: int,
    sender_name: str,
    message_id: int,
    text: str,
    show_preview: bool,
    badge: int,
) -> MessagePush:
    preview = preview_of(text) if show_preview else None
    if conversation_kind == "group":
        title = conversation_name
        body = f"{sender_name}: {preview}" if preview is not None else NO_PREVIEW_BODY
    else:
        title = sender_name
        body = preview if preview is not None else NO_PREVIEW_BODY
    return {
        "v": PAYLOAD_VERSION,
        "type": "message",
        "conversation_id": conversation_id,
        "conversation_kind": conversation_kind,
        "conversation_name": conversation_name,
        "sender_id": sender_id,
        "sender_name": sender_name,
        "message_id": str(message_id),
        "preview": preview,
        "title": title,
        "body": body,
        "badge": badge,
        "tag": conversation_tag(conversation_id),
    }


def clear_push(*, conversation_id: int, last_read_id: int, badge: int) -> ClearPush:
    return {
        "v": PAYLOAD_VERSION,
        "type": "clear",
        "conversation_id": conversation_id,
        "last_read_id": str(last_read_id),
        "badge": badge,
        "tag": conversation_tag(conversation_id),
    }


def fcm_data(payload: dict[str, Any]) -> dict[str, str]:
    """FCM ``data`` only takes strings; a missing preview is left out."""
    return {key: str(value) for key, value in payload.items() if value is not None}
