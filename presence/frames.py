"""Presence's WebSocket frames (docs/protocol.md documents them). Registered with chat's
protocol in ``PresenceConfig.ready()``, so chat parses and lists them without importing
presence."""

from __future__ import annotations

from typing import Literal, TypedDict

from chat.protocol import BaseClientFrame, ConversationId

Status = Literal["online", "offline"]


class PresencePayload(TypedDict):
    """One user's presence, in a snapshot and in GET /api/v1/presence."""

    user_id: int
    # null: the user hides their presence, or is not related to the viewer.
    status: Status | None
    # online: when they came online (or now); offline: when last seen; null: unknown.
    last_active_at: str | None


class WatchFrame(BaseClientFrame):
    type: Literal["watch"]


class TypingFrame(BaseClientFrame):
    type: Literal["typing"]
    conversation_id: ConversationId


class PresenceFrame(TypedDict):
    # Built by presence.services (its PresencePayload plus "type", which comes first).
    type: Literal["presence"]
    user_id: int
    status: Literal["online", "offline"] | None
    last_active_at: str | None


class PresenceSnapshotFrame(TypedDict):
    type: Literal["presence.snapshot"]
    ref: str | None
    users: list[PresencePayload]


class TypingEventFrame(TypedDict):
    type: Literal["typing"]
    conversation_id: int
    user_id: int


CLIENT_FRAMES = (WatchFrame, TypingFrame)
SERVER_FRAMES = (PresenceFrame, PresenceSnapshotFrame, TypingEventFrame)
