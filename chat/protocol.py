"""The WebSocket protocol's frames, each defined once (docs/protocol.md documents them and
tests/chat/test_protocol_doc.py checks the document against these definitions).

Client frames are validated with pydantic: a frame that fails validation gets an ``error``
frame with a stable ``code`` and the client's ``ref`` echoed, and nothing happens. Apps
built on chat add their own frames with :func:`register_frames` (presence: ``watch``,
``typing``, ``presence``, ``presence.snapshot``), so chat never imports them.
Server frames are plain dicts shaped by TypedDicts (chat/frames.py for chat's, below for
``error``), serialized with orjson.
"""

from __future__ import annotations

import functools
import operator
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

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
CLOSE_SERVER_DRAINING = 4012  # this process is shutting down: reconnect elsewhere now


class BaseClientFrame(BaseModel):
    """A client frame: unknown fields refused, ``ref`` echoed in the reply. Apps built on
    chat (presence) define their frames on it and register them (:func:`register_frames`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str
    ref: Ref | None = None


class SendFrame(BaseClientFrame):
    type: Literal["send"]
    conversation_id: ConversationId
    client_msg_id: Annotated[str, Field(min_length=1, max_length=MAX_CLIENT_MSG_ID_LENGTH)]
    # Length limits are checked by the service (one rule for REST and WebSocket).
    text: str


class SyncFrame(BaseClientFrame):
    type: Literal["sync"]
    after: Seq | None = None
    limit: Annotated[int, Field(ge=1, le=SYNC_PAGE_MAX)] = SYNC_PAGE_DEFAULT


class AckFrame(BaseClientFrame):
    type: Literal["ack"]
    seq: Seq


class ReadFrame(BaseClientFrame):
    type: Literal["read"]
    conversation_id: ConversationId
    message_id: MessageId


class EditFrame(BaseClientFrame):
    type: Literal["edit"]
    message_id: MessageId
    text: str


class DeleteFrame(BaseClientFrame):
    type: Literal["delete"]
    message_id: MessageId


class FetchFrame(BaseClientFrame):
    type: Literal["fetch"]
    message_ids: Annotated[list[MessageId], Field(min_length=1, max_length=100)]


class PingFrame(BaseClientFrame):
    type: Literal["ping"]


# Chat's own client frames, in the order the unknown_frame_type error lists them; frames
# registered by other apps follow in registration order.
CHAT_CLIENT_FRAMES: tuple[type[BaseClientFrame], ...] = (
    SendFrame,
    SyncFrame,
    AckFrame,
    ReadFrame,
    EditFrame,
    DeleteFrame,
    FetchFrame,
    PingFrame,
)


class _Frames:
    """The frames the protocol has: chat's and those registered by the apps built on it."""

    def __init__(self) -> None:
        self.client: tuple[type[BaseClientFrame], ...] = CHAT_CLIENT_FRAMES
        self.server: tuple[type[Any], ...] = ()
        self.adapter = self._adapter()

    def register(
        self, client: Sequence[type[BaseClientFrame]], server: Sequence[type[Any]]
    ) -> None:
        self.client += tuple(frame for frame in client if frame not in self.client)
        self.server += tuple(frame for frame in server if frame not in self.server)
        self.adapter = self._adapter()

    def _adapter(self) -> TypeAdapter[BaseClientFrame]:
        members: Any = functools.reduce(operator.or_, self.client)
        union: Any = Annotated[members, Field(discriminator="type")]
        adapter: TypeAdapter[BaseClientFrame] = TypeAdapter(union)
        return adapter


_frames = _Frames()


def register_frames(
    *, client: Sequence[type[BaseClientFrame]] = (), server: Sequence[type[Any]] = ()
) -> None:
    """Add an app's frames to the protocol: ``client`` models are parsed like chat's own,
    ``server`` TypedDicts (each with a ``type`` literal) are listed beside chat's. Called
    from the app's ``AppConfig.ready()``; registering a frame again changes nothing."""
    _frames.register(client, server)


def client_frame_models() -> tuple[type[BaseClientFrame], ...]:
    return _frames.client


def client_frame_types() -> tuple[str, ...]:
    return tuple(frame_type(model) for model in _frames.client)


def registered_server_frames() -> tuple[type[Any], ...]:
    """The server frame TypedDicts registered by the apps built on chat."""
    return _frames.server


def server_frame_types() -> tuple[str, ...]:
    """Every server frame type: chat's own (SERVER_FRAME_TYPES), then registered ones."""
    registered = (typing.get_type_hints(frame)["type"] for frame in _frames.server)
    return SERVER_FRAME_TYPES + tuple(typing.get_args(hint)[0] for hint in registered)


def frame_type(model: type[BaseClientFrame]) -> str:
    """The ``type`` literal of a client frame model."""
    (literal,) = typing.get_args(model.model_fields["type"].annotation)
    if not isinstance(literal, str):
        raise TypeError(f"{model.__name__}.type must be a string literal")
    return literal


class FrameError(Exception):
    def __init__(self, code: str, message: str, ref: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


def parse_client_frame(raw: str | bytes) -> BaseClientFrame:
    """Parse and validate one client frame, or raise FrameError with a stable code."""
    try:
        return _frames.adapter.validate_json(raw)
    except ValidationError as exc:
        ref = _salvage_ref(raw)
        first = exc.errors()[0]
        kind = first["type"]
        if kind == "json_invalid":
            raise FrameError("malformed_frame", "The frame is not valid JSON.", ref) from None
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            raise FrameError(
                "unknown_frame_type",
                f"Frame type must be one of: {', '.join(client_frame_types())}.",
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
# Chat's server frames and their builders are in chat/frames.py; apps built on chat
# register theirs (register_frames). The error frame is every transport's, so it is here.


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
)


def error_frame(code: str, message: str, ref: str | None = None) -> ErrorFrame:
    return {"type": "error", "ref": ref, "code": code, "message": message}
