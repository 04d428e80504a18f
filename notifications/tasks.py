"""Celery tasks of the notification service. Named, JSON keyword arguments (ids, not
objects) whose shapes are typed once in :mod:`notifications.task_payloads`; thin: each
calls one function of notifications.decision or notifications.sending. Nothing imports
this module to enqueue (``notifications.runner`` sends tasks by name): imports go one way.

Delivery is at least once (``task_acks_late``): a task that dies mid-way runs again with
the same task id, which is also its claim on PushDelivery rows, so it finishes its own
pushes and never repeats one that the push service accepted.

A task queued by the previous release arrives with positional arguments in the same order
as these parameters, and list-shaped items (``from_json`` accepts both): queued pushes
survive an upgrade.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from . import decision, sending
from .task_payloads import (
    NewMessagePush,
    NewMessagesPush,
    PruneDeliveries,
    ReadPush,
    SendBatch,
    UnackedPush,
)

# A lost or refused database connection is transient: retry the task (same task id, so its
# PushDelivery claims are still its own) rather than lose the pushes.
DATABASE_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


@shared_task(name=NewMessagePush.task_name, bind=True, **DATABASE_RETRY)
def push_new_message(
    self: Task[Any, Any], message_id: int, conversation_id: int, user_ids: list[int]
) -> int:
    return decision.push_new_message(
        message_id=message_id,
        conversation_id=conversation_id,
        user_ids=user_ids,
        claim=str(self.request.id),
    )


@shared_task(name=NewMessagesPush.task_name, bind=True, **DATABASE_RETRY)
def push_new_messages(self: Task[Any, Any], batch: list[Any]) -> int:
    """``push_new_message`` for the offline recipients of a batch of sends."""
    messages = NewMessagesPush.from_json(batch).messages
    return decision.push_new_messages(messages=messages, claim=str(self.request.id))


@shared_task(name=UnackedPush.task_name, bind=True, **DATABASE_RETRY)
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


@shared_task(name=ReadPush.task_name, **DATABASE_RETRY)
def push_conversation_read(user_id: int, conversation_id: int, last_read_id: int) -> int:
    return decision.push_conversation_read(
        user_id=user_id, conversation_id=conversation_id, last_read_id=last_read_id
    )


@shared_task(name=SendBatch.task_name, **DATABASE_RETRY)
def push_send(kind: str, items: list[Any], attempt: int) -> dict[str, int]:
    return sending.send_batch(SendBatch.from_json(kind=kind, items=items, attempt=attempt))


@shared_task(name=PruneDeliveries.task_name, **DATABASE_RETRY)
def prune_deliveries() -> int:
    """Periodic (``CELERY_BEAT_SCHEDULE``): celery beat in production, a timer embedded."""
    return sending.prune_deliveries()
