"""Notifications' subscriptions to chat's post-commit hooks (``chat.hooks``): chat never
imports this app; it publishes what happened and these adapters turn it into the push
entry points of :mod:`notifications.services` (each at most one enqueue)."""

from __future__ import annotations

from chat import hooks

from . import services


def on_messages_stored(event: hooks.MessagesStored) -> None:
    services.messages_stored([(d.message, d.seqs, d.offline_user_ids) for d in event.deliveries])


def on_conversation_read(event: hooks.ConversationRead) -> None:
    services.conversation_read(
        user_id=event.user_id,
        conversation_id=event.conversation_id,
        last_read_id=event.last_read_id,
    )


def on_delivery_unacknowledged(event: hooks.DeliveryUnacknowledged) -> None:
    services.device_unacked(
        user_id=event.user_id,
        device_id=event.device_id,
        acked_seq=event.acked_seq,
        delivered_seq=event.delivered_seq,
    )


def connect() -> None:
    hooks.subscribe(hooks.MessagesStored, on_messages_stored)
    hooks.subscribe(hooks.ConversationRead, on_conversation_read)
    hooks.subscribe(hooks.DeliveryUnacknowledged, on_delivery_unacknowledged)
