"""Celery tasks of the notification service. Named, JSON arguments (ids, not objects),
thin: each calls one function of notifications.decision or notifications.sending.

Delivery is at least once (``task_acks_late``): a task that dies mid-way runs again with
the same task id, which is also its claim on PushDelivery rows, so it finishes its own
pushes and never repeats one that the push service accepted.
"""

from __future__ import annotations

import secrets
from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from . import decision, sending

# A lost or refused database connection is transient: retry the task (same task id, so its
# PushDelivery claims are still its own) rather than lose the pushes.
DATABASE_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


@shared_task(name="notifications.push_new_message", bind=True, **DATABASE_RETRY)
def push_new_message(
    self: Task[Any, Any], message_id: int, conversation_id: int, user_ids: list[int]
) -> int:
    if secrets.randbelow(500) == 0:  # housekeeping without a beat scheduler
        sending.prune_deliveries()
    return decision.push_new_message(
        message_id=message_id,
        conversation_id=conversation_id,
        user_ids=user_ids,
        claim=str(self.request.id),
    )


@shared_task(name="notifications.push_new_messages", bind=True, **DATABASE_RETRY)
def push_new_messages(self: Task[Any, Any], batch: list[list[Any]]) -> int:
    """``push_new_message`` for the offline recipients of a batch of sends."""
    return decision.push_new_messages(batch=batch, claim=str(self.request.id))


@shared_task(name="notifications.push_unacked", bind=True, **DATABASE_RETRY)
def push_unacked(
    self: Task[Any, Any], user_id: int, device_id: int, acked_seq: int, delivered_seq: int
) -> int:
    return decision.push_unacked(
        user_id=user_id,
        device_id=device_id,
        acked_seq=acked_seq,
        delivered_seq=delivered_seq,
        claim=str(self.request.id),
    )


@shared_task(name="notifications.push_conversation_read", **DATABASE_RETRY)
def push_conversation_read(user_id: int, conversation_id: int, last_read_id: int) -> int:
    return decision.push_conversation_read(
        user_id=user_id, conversation_id=conversation_id, last_read_id=last_read_id
    )


@shared_task(name="notifications.push_send", **DATABASE_RETRY)
def push_send(kind: str, items: list[list[Any]], attempt: int) -> dict[str, int]:
    return sending.send_batch(kind=kind, items=items, attempt=attempt)
