"""The arguments of the push tasks: one typed definition per task, used by the side that
enqueues (``notifications.services``, ``.sending``) and by the task that runs it
(``notifications.tasks``).

Each payload travels as the task's keyword arguments (JSON: ids and plain values, never
model objects), so a task's parameters are the payload's fields. Before these types the
tasks took positional lists; a task queued in the broker by the previous release still
arrives in that shape during an upgrade, and is accepted (``from_json`` takes both), so a
deploy never drops queued pushes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol

JSON = dict[str, Any]


class _FlatPayload:
    """A payload of plain fields (ints): its task's kwargs are its fields."""

    __slots__ = ()

    def to_json(self) -> JSON:
        payload: Any = self  # every subclass is a dataclass
        return {field.name: getattr(payload, field.name) for field in fields(payload)}


def _fields(data: JSON | Sequence[Any], names: tuple[str, ...]) -> JSON:
    """The payload as a dict: the previous release sent the same fields as a list."""
    return data if isinstance(data, dict) else dict(zip(names, data, strict=True))


class TaskPayload(Protocol):
    """What :func:`notifications.runner.enqueue` needs: the task's name and its kwargs."""

    task_name: ClassVar[str]

    def to_json(self) -> JSON: ...


@dataclass(frozen=True, slots=True)
class NewMessagePush:
    """Push one new message to the recipients that were offline when it was sent."""

    task_name: ClassVar[str] = "notifications.push_new_message"
    message_id: int
    conversation_id: int
    user_ids: tuple[int, ...]

    def to_json(self) -> JSON:
        return {
            "message_id": self.message_id,
            "conversation_id": self.conversation_id,
            "user_ids": list(self.user_ids),
        }

    @classmethod
    def from_json(cls, data: JSON | Sequence[Any]) -> NewMessagePush:
        """From ``to_json``'s dict, or the previous release's ``[message_id,
        conversation_id, user_ids]``."""
        data = _fields(data, ("message_id", "conversation_id", "user_ids"))
        return cls(
            message_id=int(data["message_id"]),
            conversation_id=int(data["conversation_id"]),
            user_ids=tuple(int(u) for u in data["user_ids"]),
        )


@dataclass(frozen=True, slots=True)
class NewMessagesPush:
    """:class:`NewMessagePush` for each message of a group-commit batch, in one task."""

    task_name: ClassVar[str] = "notifications.push_new_messages"
    messages: tuple[NewMessagePush, ...]

    def to_json(self) -> JSON:
        return {"batch": [message.to_json() for message in self.messages]}

    @classmethod
    def from_json(cls, batch: Sequence[JSON | Sequence[Any]]) -> NewMessagesPush:
        return cls(tuple(NewMessagePush.from_json(item) for item in batch))


@dataclass(frozen=True, slots=True)
class UnackedPush(_FlatPayload):
    """A connected device did not acknowledge up to ``delivered_seq`` in time.

    ``acked_seq`` is the device's last acknowledged sync seq: the messages pushed are
    those after it, up to ``delivered_seq``, the newest one per conversation.
    """

    task_name: ClassVar[str] = "notifications.push_unacked"
    user_id: int
    device_id: int
    acked_seq: int
    delivered_seq: int


@dataclass(frozen=True, slots=True)
class ReadPush(_FlatPayload):
    """The user read a conversation up to ``last_read_id``: clear its notification."""

    task_name: ClassVar[str] = "notifications.push_conversation_read"
    user_id: int
    conversation_id: int
    last_read_id: int


@dataclass(frozen=True, slots=True)
class SendItem:
    """One push of a provider batch: to this registration, marking this delivery sent
    (None for a silent clearing update, which claims nothing)."""

    registration_id: int
    delivery_id: int | None
    payload: JSON

    def to_json(self) -> JSON:
        return {
            "registration_id": self.registration_id,
            "delivery_id": self.delivery_id,
            "payload": self.payload,
        }

    @classmethod
    def from_json(cls, data: JSON | Sequence[Any]) -> SendItem:
        """From ``to_json``'s dict, or the previous release's ``[registration_id,
        delivery_id, payload]``."""
        data = _fields(data, ("registration_id", "delivery_id", "payload"))
        delivery_id = data["delivery_id"]
        return cls(
            registration_id=int(data["registration_id"]),
            delivery_id=None if delivery_id is None else int(delivery_id),
            payload=dict(data["payload"]),
        )


@dataclass(frozen=True, slots=True)
class SendBatch:
    """One provider batch (``attempt`` counts from 1; retries are new batches)."""

    task_name: ClassVar[str] = "notifications.push_send"
    kind: str
    items: tuple[SendItem, ...]
    attempt: int

    def to_json(self) -> JSON:
        return {
            "kind": self.kind,
            "items": [item.to_json() for item in self.items],
            "attempt": self.attempt,
        }

    @classmethod
    def from_json(
        cls, *, kind: str, items: Sequence[JSON | Sequence[Any]], attempt: int
    ) -> SendBatch:
        return cls(kind=kind, items=tuple(SendItem.from_json(i) for i in items), attempt=attempt)


@dataclass(frozen=True, slots=True)
class PruneDeliveries(_FlatPayload):
    """Forget delivery claims older than ``PUSH_DELIVERY_RETENTION_HOURS`` (periodic)."""

    task_name: ClassVar[str] = "notifications.prune_deliveries"
