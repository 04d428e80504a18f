"""Post-commit hooks: what chat tells the apps built on it, without importing them.

Chat sits below ``notifications`` (and ``presence``) in the dependency direction, so it
cannot call them. Instead it publishes one typed event per fact, after the transaction
that made the fact true has committed, and those apps subscribe in their
``AppConfig.ready()``:

* :class:`MessagesStored`: a group-commit batch of sends committed and was published
  live; each entry names the recipients that had no live connection anywhere.
* :class:`ConversationRead`: a user's read position in a conversation moved.
* :class:`DeliveryUnacknowledged`: a connected device did not acknowledge delivered
  events within ``PUSH_UNACKED_DELAY`` (or closed with events unacknowledged).

Publishing is a plain in-process call of each subscriber, in the caller's thread: no
query, no Redis command, so the send path's round-trip counts do not change. Callers
publish from where the effect may happen (an on-commit callback, a worker thread);
subscribers must stay cheap there (enqueue a task, nothing more).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from chat.store.base import StoredMessage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """One committed message, the sync ``seq`` each recipient got, and the recipients
    with no live connection anywhere when it was published."""

    message: StoredMessage
    seqs: Mapping[int, int]
    offline_user_ids: Iterable[int]


@dataclass(frozen=True, slots=True)
class MessagesStored:
    deliveries: Sequence[StoredDelivery]


@dataclass(frozen=True, slots=True)
class ConversationRead:
    user_id: int
    conversation_id: int
    last_read_id: int


@dataclass(frozen=True, slots=True)
class DeliveryUnacknowledged:
    user_id: int
    device_id: int
    acked_seq: int
    delivered_seq: int


Event = MessagesStored | ConversationRead | DeliveryUnacknowledged
EventT = TypeVar("EventT", MessagesStored, ConversationRead, DeliveryUnacknowledged)

_subscribers: dict[type[Event], list[Callable[[Event], None]]] = {}
_lock = threading.Lock()


def subscribe(event_type: type[EventT], handler: Callable[[EventT], None]) -> None:
    """Call ``handler`` with every published ``event_type``. Subscribing the same handler
    twice (``ready()`` run again) keeps one subscription."""
    with _lock:
        handlers = _subscribers.setdefault(event_type, [])
        if handler not in handlers:
            # Keyed by the event's own type, so the handler only ever sees EventT.
            handlers.append(handler)  # type: ignore[arg-type]


def unsubscribe(event_type: type[EventT], handler: Callable[[EventT], None]) -> None:
    with _lock:
        handlers = _subscribers.get(event_type, [])
        if handler in handlers:
            handlers.remove(handler)  # type: ignore[arg-type]


def publish(event: Event) -> None:
    """Hand ``event`` to its subscribers. The fact is already committed, so a failing
    subscriber is logged and never reaches the publisher (nor the other subscribers)."""
    for handler in tuple(_subscribers.get(type(event), ())):
        try:
            handler(event)
        except Exception:
            logger.exception("chat hook: a %s subscriber failed", type(event).__name__)
