"""chat.hooks: chat publishes typed post-commit events; the apps above it subscribe."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction

from accounts.models import User
from chat import hooks
from chat.services import conversations, messages, sync


@pytest.fixture
def recorded() -> Iterator[list[hooks.Event]]:
    events: list[hooks.Event] = []
    hooks.subscribe(hooks.MessagesStored, events.append)
    hooks.subscribe(hooks.ConversationRead, events.append)
    hooks.subscribe(hooks.DeliveryUnacknowledged, events.append)
    yield events
    hooks.unsubscribe(hooks.MessagesStored, events.append)
    hooks.unsubscribe(hooks.ConversationRead, events.append)
    hooks.unsubscribe(hooks.DeliveryUnacknowledged, events.append)


def test_a_subscriber_gets_only_its_event_type_and_once() -> None:
    got: list[hooks.ConversationRead] = []
    hooks.subscribe(hooks.ConversationRead, got.append)
    hooks.subscribe(hooks.ConversationRead, got.append)  # ready() run twice
    try:
        hooks.publish(hooks.ConversationRead(user_id=1, conversation_id=2, last_read_id=3))
        hooks.publish(
            hooks.DeliveryUnacknowledged(user_id=1, device_id=2, acked_seq=0, delivered_seq=4)
        )
    finally:
        hooks.unsubscribe(hooks.ConversationRead, got.append)
    assert got == [hooks.ConversationRead(user_id=1, conversation_id=2, last_read_id=3)]


def test_a_failing_subscriber_reaches_neither_the_publisher_nor_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[hooks.ConversationRead] = []

    def broken(event: hooks.ConversationRead) -> None:
        raise RuntimeError("broker down")

    hooks.subscribe(hooks.ConversationRead, broken)
    hooks.subscribe(hooks.ConversationRead, got.append)
    try:
        hooks.publish(hooks.ConversationRead(user_id=1, conversation_id=2, last_read_id=3))
    finally:
        hooks.unsubscribe(hooks.ConversationRead, broken)
        hooks.unsubscribe(hooks.ConversationRead, got.append)
    assert len(got) == 1
    assert "ConversationRead subscriber failed" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_send_publishes_messages_stored_after_commit_with_the_offline_recipients(
    make_user: Callable[..., User], recorded: list[Any]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    conversation, _ = conversations.get_or_create_direct(alice, bob.pk)
    with transaction.atomic():
        sent = messages.send_message(
            sender_id=alice.pk, conversation_id=conversation.pk, client_msg_id="c1", text="hi"
        )
        assert recorded == []  # nothing before the commit
    [event] = [e for e in recorded if isinstance(e, hooks.MessagesStored)]
    [delivery] = event.deliveries
    assert delivery.message.id == sent.message.id
    assert set(delivery.seqs) == {alice.pk, bob.pk}
    assert bob.pk in set(delivery.offline_user_ids)


@pytest.mark.django_db(transaction=True)
def test_mark_read_publishes_conversation_read_after_commit(
    make_user: Callable[..., User], recorded: list[Any]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    conversation, _ = conversations.get_or_create_direct(alice, bob.pk)
    sent = messages.send_message(
        sender_id=alice.pk, conversation_id=conversation.pk, client_msg_id="c1", text="hi"
    )
    recorded.clear()
    with transaction.atomic():
        sync.mark_read(user_id=bob.pk, conversation_id=conversation.pk, message_id=sent.message.id)
        assert recorded == []
    assert recorded == [
        hooks.ConversationRead(
            user_id=bob.pk, conversation_id=conversation.pk, last_read_id=sent.message.id
        )
    ]
