"""What the fault-injection workload's clients saw, for the checker and the report.

One ``ChaosLedger`` per run, written by every device client (``bench.chaos.clients``) on
one event loop. All times are ``time.monotonic()`` seconds, the clock the schedule runner
must use for its timeline too. Devices are named by a key (``"u<user id>d<n>"``).

It records: every send attempt (first tries and retries of one ``client_msg_id``), every
``sent`` acknowledgement, every stream event each device processed (its ``seq``, type and
message), each device's live/down timeline, and the connection errors and ``error`` frames
the clients met. The checker judges it; nothing here decides what is right.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SendAttempt:
    device: str
    user_id: int
    conversation_id: int
    client_msg_id: str
    at: float
    retry: bool


@dataclass(frozen=True)
class SentAck:
    device: str
    user_id: int
    conversation_id: int
    client_msg_id: str
    message_id: int
    seq: int | None
    duplicate: bool
    at: float


@dataclass(frozen=True)
class StreamEvent:
    """One event a device processed (its ``seq`` moved the cursor), ``sent`` included."""

    device: str
    seq: int
    type: str
    at: float
    message_id: int | None = None
    conversation_id: int | None = None
    sender_id: int | None = None
    client_msg_id: str | None = None


@dataclass(frozen=True)
class LiveChange:
    device: str
    at: float
    live: bool  # True: a sync page with has_more false arrived; False: the socket closed


@dataclass(frozen=True)
class ClientError:
    device: str
    at: float
    kind: str  # "connect:<exception>", "closed:<close code>", or an error frame's code
    frame: bool  # True for an ``error`` frame, False for a connection failure


@dataclass(frozen=True)
class StreamGap:
    device: str
    cursor: int
    seq: int
    at: float


@dataclass
class ChaosLedger:
    started_at: float = field(default_factory=time.monotonic)
    # when the workload began closing its devices on purpose (their downs are no finding)
    stopped_at: float = float("inf")
    # conversation id -> member user ids; device key -> user id
    members: dict[int, tuple[int, ...]] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    # push address (Web Push subscription name) -> user id, for users with no socket
    push_owners: dict[str, int] = field(default_factory=dict)
    # device key -> the stored cursor it started from (its stream must follow on from it)
    start_cursors: dict[str, int] = field(default_factory=dict)
    attempts: list[SendAttempt] = field(default_factory=list)
    acks: list[SentAck] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)
    timeline: list[LiveChange] = field(default_factory=list)
    errors: list[ClientError] = field(default_factory=list)
    gaps: list[StreamGap] = field(default_factory=list)
    # events a device ignored because their seq was not above its cursor (allowed)
    replayed: Counter[str] = field(default_factory=Counter)
    # message id -> devices that processed it (kept up to date for ``settle``)
    delivered_to: defaultdict[int, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add_device(self, device: str, user_id: int, cursor: int = 0) -> None:
        self.devices[device] = user_id
        self.start_cursors[device] = cursor

    def record_attempt(self, attempt: SendAttempt) -> None:
        self.attempts.append(attempt)

    def record_ack(self, ack: SentAck) -> None:
        self.acks.append(ack)

    def record_event(self, event: StreamEvent) -> None:
        self.events.append(event)
        if event.message_id is not None and event.type in ("message.new", "sent"):
            self.delivered_to[event.message_id].add(event.device)

    def record_live(self, device: str, live: bool, at: float | None = None) -> None:
        self.timeline.append(LiveChange(device, time.monotonic() if at is None else at, live))

    def record_error(self, device: str, kind: str, *, frame: bool) -> None:
        self.errors.append(ClientError(device, time.monotonic(), kind, frame))

    def record_gap(self, device: str, cursor: int, seq: int) -> None:
        self.gaps.append(StreamGap(device, cursor, seq, time.monotonic()))

    def devices_of(self, user_id: int) -> list[str]:
        return [device for device, owner in self.devices.items() if owner == user_id]

    def acknowledged(self) -> dict[int, SentAck]:
        """message id -> its first ``sent`` acknowledgement."""
        first: dict[int, SentAck] = {}
        for ack in self.acks:
            first.setdefault(ack.message_id, ack)
        return first

    def undelivered(self) -> int:
        """Deliveries still owed for acknowledged messages (0 once everything arrived)."""
        devices_of: dict[int, list[str]] = {}
        for device, user_id in self.devices.items():
            devices_of.setdefault(user_id, []).append(device)
        owed_in = {
            conversation_id: {device for user in members for device in devices_of.get(user, [])}
            for conversation_id, members in self.members.items()
        }
        return sum(
            len(owed_in.get(ack.conversation_id, set()) - self.delivered_to.get(message_id, set()))
            for message_id, ack in self.acknowledged().items()
        )

    def error_counts(self, start: float = float("-inf"), end: float = float("inf")) -> Counter[str]:
        return Counter(error.kind for error in self.errors if start <= error.at < end)
