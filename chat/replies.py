"""One function per answer the server gives on both transports.

The REST view returns the body; the WebSocket reply is the same body with the frame's
``type`` and the client's ``ref`` in front (docs/protocol.md), so the two cannot drift.
"""

from __future__ import annotations

from typing import TypedDict

from chat import frames
from chat.frames import MessagePayload, SyncEvent
from chat.models import Membership
from chat.services.messages import SendResult
from chat.services.sync import SyncPage
from chat.store.base import StoredMessage


class ReadState(TypedDict):
    last_read_id: int
    unread_count: int


def read_state(membership: Membership) -> ReadState:
    """After a ``read``: POST .../read's body, and the WebSocket ``ok``'s fields."""
    return {"last_read_id": membership.last_read_id, "unread_count": membership.unread_count}


def read_ok(ref: str | None, membership: Membership) -> frames.OkFrame:
    return {**frames.ok(ref), **read_state(membership)}


class SyncPageBody(TypedDict):
    events: list[SyncEvent]
    last_seq: int
    has_more: bool
    reset: bool


def sync_page_body(page: SyncPage) -> SyncPageBody:
    """GET /api/v1/sync's body, and the WebSocket ``sync.page``'s fields."""
    return {
        "events": page.events,
        "last_seq": page.last_seq,
        "has_more": page.has_more,
        "reset": page.reset,
    }


def sync_page_frame(ref: str | None, page: SyncPage) -> frames.SyncPageFrame:
    return {"type": "sync.page", "ref": ref, **sync_page_body(page)}


class SentBody(TypedDict):
    message: MessagePayload
    seq: int
    duplicate: bool


def sent_body(result: SendResult) -> SentBody:
    """POST .../messages's body: the stored message in full."""
    return {
        "message": frames.message_payload(result.message),
        "seq": result.seq,
        "duplicate": result.duplicate,
    }


def sent_frame(ref: str | None, result: SendResult) -> frames.SentFrame:
    """The WebSocket ``sent``: the same send result, as ids (the client has the text)."""
    message = result.message
    return {
        "type": "sent",
        "ref": ref,
        "client_msg_id": message.client_msg_id,
        "conversation_id": message.conversation_id,
        "message_id": message.id,
        "seq": result.seq,
        "created_at": frames.iso(message.created_at) or "",
        "duplicate": result.duplicate,
    }


def messages_body(found: list[StoredMessage]) -> list[MessagePayload]:
    """Fetched messages in full: the WebSocket ``messages`` list, REST history's results."""
    return [frames.message_payload(message) for message in found]


def messages_frame(ref: str | None, found: list[StoredMessage]) -> frames.MessagesFrame:
    return {"type": "messages", "ref": ref, "messages": messages_body(found)}
