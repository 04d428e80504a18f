"""Behaviour of the Django-database store beyond the shared contract: its cost on the send
path, how it behaves inside a caller's transaction, and the rules it adds."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.ids import next_id
from chat.store.base import EventKind, MessageNotFound, NewEvent, NewMessage
from chat.store.django_store import DjangoMessageStore

pytestmark = pytest.mark.django_db

ALICE, BOB, CAROL = 201, 202, 203
CONVERSATION = 8001


def new_message(
    client_msg_id: str, *, message_id: int | None = None, text: str = "hi"
) -> NewMessage:
    return NewMessage(
        id=message_id if message_id is not None else next_id(),
        conversation_id=CONVERSATION,
        sender_id=ALICE,
        client_msg_id=client_msg_id,
        text=text,
        created_at=timezone.now(),
    )


def data_statements(queries: CaptureQueriesContext) -> list[str]:
    """The captured statements other than transaction control."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if not query["sql"].upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]


def test_a_send_is_three_statements_whatever_the_group_size() -> None:
    store = DjangoMessageStore()

    with CaptureQueriesContext(connection) as queries:
        store.put_message(new_message("a"), recipient_ids=range(1, 101))

    assert len(data_statements(queries)) == 3


def test_a_retry_is_acknowledged_in_a_fixed_number_of_statements() -> None:
    store = DjangoMessageStore()
    store.put_message(new_message("a"), recipient_ids=range(1, 101))

    with CaptureQueriesContext(connection) as queries:
        result = store.put_message(new_message("a"), recipient_ids=range(1, 101))

    assert not result.created
    assert len(data_statements(queries)) == 4


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_every_row_was_written_rolls_all_of_them_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = DjangoMessageStore()
    store.put_message(new_message("first"), recipient_ids=[ALICE, BOB])
    write_sync_entries = DjangoMessageStore._insert_sync_entries

    def write_then_fail(self: DjangoMessageStore, *args: Any, **kwargs: Any) -> None:
        write_sync_entries(self, *args, **kwargs)
        raise RuntimeError("connection lost before commit")

    monkeypatch.setattr(DjangoMessageStore, "_insert_sync_entries", write_then_fail)
    lost = new_message("second")

    with pytest.raises(RuntimeError):
        store.put_message(lost, recipient_ids=[ALICE, BOB, CAROL])

    monkeypatch.undo()
    assert store.get_messages([lost.id]) == {}
    assert (store.last_seq(ALICE), store.last_seq(BOB), store.last_seq(CAROL)) == (1, 1, 0)
    assert store.put_message(new_message("third"), recipient_ids=[ALICE, CAROL]).seqs == {
        ALICE: 2,
        CAROL: 1,
    }


@pytest.mark.django_db(transaction=True)
def test_a_failed_put_inside_the_callers_transaction_rolls_back_the_callers_writes_too() -> None:
    store = DjangoMessageStore()
    taken = store.put_message(new_message("a"), recipient_ids=[ALICE]).message

    def add_member_then_send_with_a_taken_id() -> None:
        with transaction.atomic():
            store.append_events(
                [NewEvent(user_id=BOB, kind=EventKind.MEMBER_ADDED, conversation_id=CONVERSATION)]
            )
            store.put_message(new_message("b", message_id=taken.id), recipient_ids=[ALICE, BOB])

    with pytest.raises(IntegrityError):
        add_member_then_send_with_a_taken_id()

    assert (store.last_seq(ALICE), store.last_seq(BOB)) == (1, 0)


def test_a_missing_message_leaves_the_callers_transaction_usable() -> None:
    store = DjangoMessageStore()

    with transaction.atomic():
        with pytest.raises(MessageNotFound):
            store.edit_message(1, text="x", edited_at=timezone.now(), recipient_ids=[ALICE])
        result = store.put_message(new_message("after"), recipient_ids=[ALICE])

    assert result.seqs == {ALICE: 1}


def test_a_tombstone_cannot_be_edited_back_to_life() -> None:
    store = DjangoMessageStore()
    message = store.put_message(new_message("a", text="oops"), recipient_ids=[ALICE]).message
    store.tombstone_message(message.id, deleted_at=timezone.now(), recipient_ids=[ALICE])

    with pytest.raises(MessageNotFound):
        store.edit_message(message.id, text="back", edited_at=timezone.now(), recipient_ids=[ALICE])

    assert store.get_messages([message.id])[message.id].text == ""
    assert store.last_seq(ALICE) == 2


def test_deleting_twice_keeps_the_first_deletion_time() -> None:
    store = DjangoMessageStore()
    message = store.put_message(new_message("a"), recipient_ids=[ALICE]).message
    first, _ = store.tombstone_message(message.id, deleted_at=timezone.now(), recipient_ids=[ALICE])

    second, seqs = store.tombstone_message(
        message.id, deleted_at=timezone.now(), recipient_ids=[ALICE]
    )

    assert second.deleted_at == first.deleted_at
    assert seqs == {ALICE: 3}


def test_two_events_for_one_user_in_one_call_are_refused_and_nothing_is_stored() -> None:
    store = DjangoMessageStore()
    read = NewEvent(user_id=BOB, kind=EventKind.READ, conversation_id=CONVERSATION)

    with pytest.raises(ValueError, match="one event per user"):
        store.append_events([read, read])

    assert store.last_seq(BOB) == 0
