"""Chat's server frames, each with one typed definition and one builder (docs/protocol.md,
"Server frames"; tests/chat/test_protocol_doc.py checks the tables against these).

Every path that sends a frame builds it here: the live publish (chat.services), the sync
page's rendering of stored events (chat.services.sync.render_events) and the replies to
client frames (chat.replies). A stream event is stored as its frame without ``type`` (the
entry's kind), so the live frame and its sync-page replay come from the same builder.

Field order is the wire order (orjson keeps it). Stream frames carry no ``seq`` here: the
envelope splices it in first for each recipient (chat/realtime/envelope.py), and a sync page
puts the entry's seq first (:func:`sync_event`). Presence's frames and ``error`` are
defined in chat/protocol.py.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, cast

from django.conf import settings

from chatproject import lifecycle

if TYPE_CHECKING:  # chat.protocol re-exports frames: importable before the apps load
    from chat.models import Conversation
    from chat.store.base import StoredMessage

# A stream event as a sync page lists it: ``seq`` first, then the frame of its kind.
SyncEvent = dict[str, Any]


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# --- objects inside frames ---------------------------------------------------------------


class MessagePayload(TypedDict):
    id: int
    conversation_id: int
    sender_id: int
    client_msg_id: str
    text: str
    length: int  # of the full text, in characters (Unicode code points)
    truncated: bool  # text is a preview; fetch the full body with a "fetch" frame or REST
    created_at: str
    edited_at: str | None
    deleted: bool


class ConversationPayload(TypedDict):
    id: int
    kind: str
    name: str
    created_at: str | None
    last_message_id: int | None
    member_ids: NotRequired[list[int]]  # in events: the members after the change


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
) -> ConversationPayload:
    body: ConversationPayload = {
        "id": conversation.pk,
        "kind": conversation.kind,
        "name": conversation.name,
        "created_at": iso(conversation.created_at),
        "last_message_id": conversation.last_message_id or None,
    }
    if member_ids is not None:
        body["member_ids"] = member_ids
    return body


# --- stream events (in the sync queue, replayed by sync pages) ---------------------------


class MessageNewFrame(TypedDict):
    type: Literal["message.new"]
    message: MessagePayload


class MessageEditedFrame(TypedDict):
    type: Literal["message.edited"]
    message: MessagePayload


class MessageDeletedFrame(TypedDict):
    type: Literal["message.deleted"]
    message: MessagePayload


class MemberAddedFrame(TypedDict):
    type: Literal["member.added"]
    conversation: ConversationPayload
    user_ids: list[int]
    actor_id: int


class MemberRemovedFrame(TypedDict):
    type: Literal["member.removed"]
    conversation: ConversationPayload
    user_ids: list[int]
    actor_id: int


class ConversationUpdatedFrame(TypedDict):
    type: Literal["conversation.updated"]
    conversation: ConversationPayload
    actor_id: int


class ReadFrame(TypedDict):
    type: Literal["read"]
    conversation_id: int
    last_read_id: int
    unread_count: int


MessageFrame = MessageNewFrame | MessageEditedFrame | MessageDeletedFrame
StoredEventFrame = MemberAddedFrame | MemberRemovedFrame | ConversationUpdatedFrame | ReadFrame


def message_new(message: StoredMessage, *, full: bool = True) -> MessageNewFrame:
    return {"type": "message.new", "message": message_payload(message, full=full)}


def message_edited(message: StoredMessage, *, full: bool = True) -> MessageEditedFrame:
    return {"type": "message.edited", "message": message_payload(message, full=full)}


def message_deleted(message: StoredMessage, *, full: bool = True) -> MessageDeletedFrame:
    return {"type": "message.deleted", "message": message_payload(message, full=full)}


class _MembershipChange(TypedDict):
    conversation: ConversationPayload
    user_ids: list[int]
    actor_id: int


def member_added(
    conversation: ConversationPayload, *, user_ids: list[int], actor_id: int
) -> MemberAddedFrame:
    return {"type": "member.added", **_change(conversation, user_ids, actor_id)}


def member_removed(
    conversation: ConversationPayload, *, user_ids: list[int], actor_id: int
) -> MemberRemovedFrame:
    return {"type": "member.removed", **_change(conversation, user_ids, actor_id)}


def _change(
    conversation: ConversationPayload, user_ids: list[int], actor_id: int
) -> _MembershipChange:
    return {"conversation": conversation, "user_ids": user_ids, "actor_id": actor_id}


def conversation_updated(
    conversation: ConversationPayload, *, actor_id: int
) -> ConversationUpdatedFrame:
    return {"type": "conversation.updated", "conversation": conversation, "actor_id": actor_id}


def read(*, conversation_id: int, last_read_id: int, unread_count: int) -> ReadFrame:
    return {
        "type": "read",
        "conversation_id": conversation_id,
        "last_read_id": last_read_id,
        "unread_count": unread_count,
    }


_MESSAGE_FRAMES: dict[str, Callable[..., MessageFrame]] = {
    "message.new": message_new,
    "message.edited": message_edited,
    "message.deleted": message_deleted,
}


def message_event(kind: str, message: StoredMessage) -> MessageFrame:
    """A stored message event as a sync page shows it: the message as it is now, in full."""
    return _MESSAGE_FRAMES[kind](message, full=True)


def stored_payload(frame: StoredEventFrame) -> dict[str, Any]:
    """What the sync queue keeps of an event that is not a message: its frame without
    ``type`` (the entry's kind), turned back into the frame by :func:`stored_event`."""
    return {name: value for name, value in frame.items() if name != "type"}


# The declared field order of each stored event: PostgreSQL's jsonb does not keep the order
# a payload was written in; a replay lists its fields as the live frame does (the nested
# conversation object keeps whatever order the database returns).
_STORED_FIELDS = {
    typing.get_args(hints["type"])[0]: tuple(hints)
    for hints in map(typing.get_type_hints, typing.get_args(StoredEventFrame))
}


def stored_event(kind: str, payload: Mapping[str, Any]) -> StoredEventFrame:
    frame = {"type": kind, **payload}
    ordered = {name: frame[name] for name in _STORED_FIELDS.get(kind, ()) if name in frame}
    return cast(StoredEventFrame, {**ordered, **frame})


def sync_event(seq: int, frame: MessageFrame | StoredEventFrame) -> SyncEvent:
    return {"seq": seq, **frame}


# --- live only ----------------------------------------------------------------------------


class ReceiptFrame(TypedDict):
    type: Literal["receipt"]
    conversation_id: int
    user_id: int
    delivered_id: NotRequired[int]  # exactly one of delivered_id and read_id
    read_id: NotRequired[int]


def receipt_delivered(*, conversation_id: int, user_id: int, delivered_id: int) -> ReceiptFrame:
    frame = _receipt(conversation_id, user_id)
    frame["delivered_id"] = delivered_id
    return frame


def receipt_read(*, conversation_id: int, user_id: int, read_id: int) -> ReceiptFrame:
    frame = _receipt(conversation_id, user_id)
    frame["read_id"] = read_id
    return frame


def _receipt(conversation_id: int, user_id: int) -> ReceiptFrame:
    return {"type": "receipt", "conversation_id": conversation_id, "user_id": user_id}


# --- replies to client frames (built from the shared answers in chat.replies) -------------


class HelloFrame(TypedDict):
    type: Literal["hello"]
    user_id: int
    device_id: int
    last_seq: int
    delivered_seq: int
    heartbeat_interval: int
    max_text_length: int
    draining: bool  # this process is shutting down: a close 4012 follows, reconnect elsewhere


class SentFrame(TypedDict):
    type: Literal["sent"]
    ref: str | None
    client_msg_id: str
    conversation_id: int
    message_id: int
    seq: NotRequired[int]  # absent when the reply is out of the stream (not live yet)
    created_at: str
    duplicate: bool


class SyncPageFrame(TypedDict):
    type: Literal["sync.page"]
    ref: str | None
    events: list[SyncEvent]
    last_seq: int
    has_more: bool
    reset: bool


class MessagesFrame(TypedDict):
    type: Literal["messages"]
    ref: str | None
    messages: list[MessagePayload]


class OkFrame(TypedDict):
    type: Literal["ok"]
    ref: str | None
    last_read_id: NotRequired[int]  # only after "read"
    unread_count: NotRequired[int]


class PongFrame(TypedDict):
    type: Literal["pong"]
    ref: str | None


def hello(*, user_id: int, device_id: int, last_seq: int, delivered_seq: int) -> HelloFrame:
    return {
        "type": "hello",
        "user_id": user_id,
        "device_id": device_id,
        "last_seq": last_seq,
        "delivered_seq": delivered_seq,
        "heartbeat_interval": settings.PRESENCE_HEARTBEAT_INTERVAL,
        "max_text_length": settings.MAX_MESSAGE_LENGTH,
        "draining": lifecycle.is_draining(),
    }


def ok(ref: str | None) -> OkFrame:
    return {"type": "ok", "ref": ref}


def pong(ref: str | None) -> PongFrame:
    return {"type": "pong", "ref": ref}
