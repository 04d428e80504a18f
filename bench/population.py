"""Who takes part in a workload: devices (one per user) and conversations.

Plain frozen dataclasses so they can be sent to load generator processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Device:
    index: int
    user_id: int
    token: str
    ws_url: str
    # The conversation this device sends to (None: it never sends).
    conversation_id: int | None = None


@dataclass(frozen=True)
class Conversation:
    id: int
    member_ids: tuple[int, ...]


@dataclass
class Population:
    devices: list[Device]
    conversations: dict[int, Conversation]
    base_urls: list[str] = field(default_factory=list)

    def recipients(self, conversation_id: int) -> int:
        """How many devices receive a message sent to this conversation (all but the sender)."""
        return len(self.conversations[conversation_id].member_ids) - 1
