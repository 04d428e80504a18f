"""How stored messages and conversations look on the wire (REST and WebSocket alike).

The message and conversation objects are defined with the frames that carry them
(chat/frames.py) and re-exported here for the callers that only need the objects."""

from __future__ import annotations

from typing import Any

from chat.frames import conversation_payload, iso, message_payload
from chat.models import Membership

__all__ = ["conversation_payload", "iso", "membership_payload", "message_payload"]


def membership_payload(membership: Membership) -> dict[str, Any]:
    return {
        "user_id": membership.user_id,
        "role": membership.role,
        "last_read_id": membership.last_read_id,
        "last_delivered_id": membership.last_delivered_id,
    }
