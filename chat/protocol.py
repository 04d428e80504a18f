"""The WebSocket protocol's frames, each defined once (docs/protocol.md documents them and
tests/chat/test_protocol_doc.py checks the document against these definitions).

Client frames are validated with pydantic: a frame that fails validation gets an ``error``
frame with a stable ``code`` and the client's ``ref`` echoed, and nothing happens.
Server frames are plain dicts shaped by TypedDicts (chat/frames.py for chat's, below for
presence's and ``error``), serialized with orjson.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from chat import frames
from chatproject.limits import MAX_CLIENT_MSG_ID_LENGTH, MAX_ID, SYNC_PAGE_DEFAULT, SYNC_PAGE_MAX

Ref = Annotated[str, Field(max_length=64)]
MessageId = Annotated[int, Field(ge=1, lt=MAX_ID + 1)]
ConversationId = Annotated[int, Field(ge=1, lt=MAX_ID + 1)]
Seq = Annotated[int, Field(ge=0, lt=MAX_ID + 1)]

# WebSocket close codes (docs/protocol.md, "Closing").
CLOSE_NOT_AUTHENTICATED = 4001
CLOSE_REVOKED = 4002
CLOSE_ORIGIN_NOT_ALLOWED = 4003
CLOSE_ABUSIVE = 4008
CLOSE_TOO_SLOW = 4009
CLOSE_HEARTBEAT_TIMEOUT = 4010


class _ClientFrame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ref: Ref | None = None


class SendFrame(_ClientFrame):
    type: Literal["send"]
    conversation_id: ConversationId
    client_msg_id: Annotated[str, Field(min_length=1, max_length=MAX_CLIENT_MSG_ID_LENGTH)]
    # Length limits are checked by the service (one rule for REST and WebSocket).
    text: str


class SyncFrame(_ClientFrame):
    type: Literal["sync"]
    after: Seq | None = None
    limit: Annotated[int, Field(ge=1, le=SYNC_PAGE_MAX)] = SYNC_PAGE_DEFAULT


class AckFrame(_ClientFrame):
    type: Literal["ack"]
    seq: Seq


class ReadFrame(_ClientFrame):
    type: Literal["read"]
    conversation_id: ConversationId
    message_id: MessageId


class EditFrame(_ClientFrame):
    type: Literal["edit"]
    message_id: MessageId
    text: str


class DeleteFrame(_ClientFrame):
    type: Literal["delete"]
    message_id: MessageId


class FetchFrame(_ClientFrame):
    type: Literal["fetch"]
    message_ids: Annotated[list[MessageId], Field(min_length=1, max_length=100)]


class PingFrame(_ClientFrame):
    type: Literal["ping"]


class WatchFrame(_ClientFrame):
    type: Literal["watch"]


class TypingFrame(_ClientFrame):
    type: Literal["typing"]
    conversation_id: ConversationId


ClientFrame = Annotated[
    SendFrame
    | SyncFrame
    | AckFrame
    | ReadFrame
    | EditFrame
    | DeleteFrame
    | FetchFrame
    | PingFrame
    | WatchFrame
    | TypingFrame,
    Field(discriminator="type"),
]
CLIENT_FRAME_TYPES = (
    "send",
    "sync",
    "ack",
    "read",
    "edit",
    "delete",
    "fetch",
    "ping",
    "watch",
    "typing",
)
_client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


class FrameError(Exception):
    def __init__(self, code: str, message: str, ref: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


def parse_client_frame(raw: str | bytes) -> ClientFrame:
    """Parse and validate one client frame, or raise FrameError with a stable code."""
    try:
        return _client_frame_adapter.validate_json(raw)
    except ValidationError as exc:
        ref = _salvage_ref(raw)
        first = exc.errors()[0]
        kind = first["type"]
        if kind == "json_invalid":
            raise FrameError("malformed_frame", "The frame is not valid JSON.", ref) from None
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            raise FrameError(
                "unknown_frame_type",
                f"Frame type must be one of: {', '.join(CLIENT_FRAME_TYPES)}.",
                ref,
            ) from None
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            raise FrameError("malformed_frame", "A frame must be a JSON object.", ref) from None
        where = ".".join(str(part) for part in first["loc"][1:]) or "frame"
        raise FrameError("invalid_frame", f"{where}: {first['msg']}", ref) from None


def _salvage_ref(raw: str | bytes) -> str | None:
    import orjson

    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    ref = data.get("ref") if isinstance(data, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= 64 else None


# --- Server frames --------------------------------------------------------------------------
# Chat's server frames and their builders are in chat/frames.py (re-exported here for the
# callers that name them as protocol.X); presence's frames and the error frame stay here.
MessagePayload = frames.MessagePayload
HelloFrame = frames.HelloFrame
SentFrame = frames.SentFrame
SyncPageFrame = frames.SyncPageFrame


class PresenceFrame(TypedDict):
    # Built by presence.services (its PresencePayload plus "type", which comes first).
    type: Literal["presence"]
    user_id: int
    status: Literal["online", "offline"] | None
    last_active_at: str | None


class TypingEventFrame(TypedDict):
    type: Literal["typing"]
    conversation_id: int
    user_id: int


class ErrorFrame(TypedDict):
    type: Literal["error"]
    ref: str | None
    code: str
    message: str


SERVER_FRAME_TYPES = (
    "hello",
    "sent",
    "message.new",
    "message.edited",
    "message.deleted",
    "member.added",
    "member.removed",
    "conversation.updated",
    "read",
    "receipt",
    "sync.page",
    "messages",
    "ok",
    "error",
    "pong",
    "presence",
    "presence.snapshot",
    "typing",
)


def error_frame(code: str, message: str, ref: str | None = None) -> ErrorFrame:
    return {"type": "error", "ref": ref, "code": code, "message": message}
