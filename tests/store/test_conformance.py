"""The message store contract (chat/store/base.py), clause by clause.

Every backend must pass this file: add it to ``BACKENDS`` and the whole suite runs on it.
Users are plain integers here: the store keeps no relation to the accounts tables.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.module_loading import import_string

from chat.ids import next_id
from chat.store.base import (
    BatchHasRetry,
    EventKind,
    MessageNotFound,
    MessageStore,
    NewEvent,
    NewMessage,
    StoredMessage,
)
from chat.store.django_store import DjangoMessageStore
from chat.store.models import StoredMessageRecord, SyncCounter, SyncEntryRecord

# (dotted path of the backend class, its OPTIONS). One line per backend.
BACKENDS = [
    pytest.param(("chat.store.django_store.DjangoMessageStore", {}), id="django"),
]

pytestmark = pytest.mark.django_db

ALICE, BOB, CAROL, DAVE = 101, 102, 103, 104
CONVERSATION = 7001
OTHER_CONVERSATION = 7002

MakeMessage = Callable[..., NewMessage]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> MessageStore:
    backend_path, options = request.param
    backend: MessageStore = import_string(backend_path)(**options)
    return backend


@pytest.fixture
def make_message() -> MakeMessage:
    client_ids = itertools.count(1)

    def make(
        *,
        conversation_id: int = CONVERSATION,
        sender_id: int = ALICE,
        text: str = "hello",
        client_msg_id: str | None = None,
        message_id: int | None = None,
        created_at: datetime | None = None,
    ) -> NewMessage:
        return NewMessage(
            id=message_id if message_id is not None else next_id(),
            conversation_id=conversation_id,
            sender_id=sender_id,
            client_msg_id=client_msg_id or f"client-{next(client_ids)}",
            text=text,
            created_at=created_at or timezone.now(),
        )

    return make


def send(
    store: MessageStore,
    make_message: MakeMessage,
    *,
    recipients: tuple[int, ...] = (ALICE, BOB),
    **fields: Any,
) -> StoredMessage:
    result = store.put_message(make_message(**fields), recipient_ids=recipients)
    assert result.created
    return result.message


def seqs_of(store: MessageStore, user_id: int) -> list[int]:
    return [entry.seq for entry in store.read_sync(user_id, after_seq=0, limit=10_000)]


# --- put_message ----------------------------------------------------------------------------


def test_put_message_is_readable_by_page_and_by_id(
    store: MessageStore, make_message: MakeMessage
) -> None:
    new = make_message(text="first words")

    result = store.put_message(new, recipient_ids=[ALICE, BOB])

    assert result.created
    assert result.seqs == {ALICE: 1, BOB: 1}
    expected = StoredMessage(
        id=new.id,
        conversation_id=CONVERSATION,
        sender_id=ALICE,
        client_msg_id=new.client_msg_id,
        text="first words",
        created_at=new.created_at,
    )
    assert result.message == expected
    assert store.page_conversation(CONVERSATION) == [expected]
    assert store.get_messages([new.id, 999_999]) == {new.id: expected}
    for user_id in (ALICE, BOB):
        [entry] = store.read_sync(user_id, after_seq=0, limit=10)
        assert (entry.kind, entry.conversation_id, entry.message_id, entry.seq) == (
            EventKind.MESSAGE,
            CONVERSATION,
            new.id,
            1,
        )


def test_longest_text_with_4_byte_characters_comes_back_byte_identical(
    store: MessageStore, make_message: MakeMessage
) -> None:
    # Emoji (incl. a ZWJ sequence and skin tone), musical and math symbols outside the
    # BMP, CJK, right-to-left text, combining marks and a byte-order-mark look-alike.
    alphabet = "😀👩‍👩‍👧🏽𝄞𝔘𐍈漢字עברית́é\ufeff\u200b\t\n ab"
    text = "".join(itertools.islice(itertools.cycle(alphabet), 99_999))
    assert len(text) == 99_999

    message = send(store, make_message, text=text)

    [paged] = store.page_conversation(CONVERSATION)
    fetched = store.get_messages([message.id])[message.id]
    assert paged.text.encode("utf-8") == text.encode("utf-8")
    assert fetched.text.encode("utf-8") == text.encode("utf-8")


def test_retried_put_returns_the_original_and_stores_nothing_new(
    store: MessageStore, make_message: MakeMessage
) -> None:
    original = store.put_message(
        make_message(client_msg_id="tap-1", text="once"), recipient_ids=[ALICE, BOB]
    )
    store.put_message(make_message(sender_id=BOB, text="reply"), recipient_ids=[ALICE, BOB])
    # The retry carries a fresh server id and different text (e.g. an edited draft).
    retry = make_message(client_msg_id="tap-1", text="twice")

    result = store.put_message(retry, recipient_ids=[ALICE, BOB, CAROL])

    assert not result.created
    assert result.message == original.message
    assert result.seqs == {ALICE: 1}
    assert store.get_messages([retry.id]) == {}
    assert [m.text for m in store.page_conversation(CONVERSATION)] == ["reply", "once"]
    assert (store.last_seq(ALICE), store.last_seq(BOB), store.last_seq(CAROL)) == (2, 2, 0)
    assert seqs_of(store, ALICE) == [1, 2]
    # The next real message continues the sequences without a gap.
    assert store.put_message(make_message(), recipient_ids=[ALICE, CAROL]).seqs == {
        ALICE: 3,
        CAROL: 1,
    }


def test_same_client_msg_id_from_another_sender_is_a_different_message(
    store: MessageStore, make_message: MakeMessage
) -> None:
    send(store, make_message, sender_id=ALICE, client_msg_id="same")

    result = store.put_message(
        make_message(sender_id=BOB, client_msg_id="same"), recipient_ids=[ALICE, BOB]
    )

    assert result.created
    assert len(store.page_conversation(CONVERSATION)) == 2


def test_seqs_start_at_1_and_are_gap_free_across_messages_and_events(
    store: MessageStore, make_message: MakeMessage
) -> None:
    assert store.last_seq(ALICE) == 0

    first = store.put_message(make_message(), recipient_ids=[ALICE, BOB])
    events = store.append_events(
        [
            NewEvent(user_id=ALICE, kind=EventKind.READ, conversation_id=CONVERSATION),
            NewEvent(user_id=CAROL, kind=EventKind.MEMBER_ADDED, conversation_id=CONVERSATION),
        ]
    )
    second = store.put_message(make_message(), recipient_ids=[ALICE, BOB, CAROL])

    assert first.seqs == {ALICE: 1, BOB: 1}
    assert events == {ALICE: 2, CAROL: 1}
    assert second.seqs == {ALICE: 3, BOB: 2, CAROL: 2}
    assert seqs_of(store, ALICE) == [1, 2, 3]
    assert seqs_of(store, BOB) == [1, 2]
    assert seqs_of(store, CAROL) == [1, 2]


def test_duplicate_recipients_get_one_entry(store: MessageStore, make_message: MakeMessage) -> None:
    result = store.put_message(make_message(), recipient_ids=[BOB, ALICE, BOB, ALICE])

    assert result.seqs == {ALICE: 1, BOB: 1}
    assert seqs_of(store, BOB) == [1]


@pytest.mark.django_db(transaction=True)
def test_failed_put_leaves_no_message_and_no_seq_gap(
    store: MessageStore, make_message: MakeMessage
) -> None:
    taken = send(store, make_message, recipients=(ALICE, BOB))
    # A caller bug reusing a message id fails the put after sequence numbers were assigned.
    clash = make_message(message_id=taken.id, client_msg_id="new-tap", text="lost")

    with pytest.raises(IntegrityError):
        store.put_message(clash, recipient_ids=[ALICE, BOB, CAROL])

    assert store.page_conversation(CONVERSATION) == [taken]
    assert (store.last_seq(ALICE), store.last_seq(BOB), store.last_seq(CAROL)) == (1, 1, 0)
    assert store.put_message(make_message(), recipient_ids=[ALICE, CAROL]).seqs == {
        ALICE: 2,
        CAROL: 1,
    }
    assert seqs_of(store, ALICE) == [1, 2]


def test_put_message_costs_the_same_queries_for_2_and_100_recipients(
    store: MessageStore, make_message: MakeMessage
) -> None:
    # Warm up whatever a backend does once per process.
    store.put_message(make_message(), recipient_ids=[ALICE, BOB])

    with CaptureQueriesContext(connection) as two:
        store.put_message(make_message(), recipient_ids=[ALICE, BOB])
    with CaptureQueriesContext(connection) as hundred:
        store.put_message(make_message(), recipient_ids=range(1000, 1100))

    assert len(hundred) == len(two)
    assert store.last_seq(1099) == 1


# --- put_messages (group commit) --------------------------------------------------------------


def test_batch_takes_seqs_in_batch_order_and_reads_like_single_puts(
    store: MessageStore, make_message: MakeMessage
) -> None:
    send(store, make_message, text="before")  # ALICE 1, BOB 1
    batch = [
        (make_message(text="one"), [ALICE, BOB]),
        (make_message(sender_id=BOB, text="two", conversation_id=7002), [BOB, CAROL]),
        (make_message(text="three"), [ALICE, BOB, ALICE]),
    ]

    results = store.put_messages(batch)

    assert [r.created for r in results] == [True, True, True]
    assert [dict(r.seqs) for r in results] == [
        {ALICE: 2, BOB: 2},
        {BOB: 3, CAROL: 1},
        {ALICE: 3, BOB: 4},
    ]
    assert [m.text for m in store.page_conversation(CONVERSATION)] == ["three", "one", "before"]
    bob_queue = store.read_sync(BOB, after_seq=0, limit=10)
    assert [(e.seq, e.message_id) for e in bob_queue] == [
        (1, bob_queue[0].message_id),
        (2, results[0].message.id),
        (3, results[1].message.id),
        (4, results[2].message.id),
    ]
    assert (store.last_seq(ALICE), store.last_seq(BOB), store.last_seq(CAROL)) == (3, 4, 1)


def test_batch_with_an_already_stored_message_keeps_nothing_or_acks_the_original(
    store: MessageStore, make_message: MakeMessage
) -> None:
    original = store.put_message(make_message(client_msg_id="tap-1"), recipient_ids=[ALICE, BOB])
    batch = [
        (make_message(text="new"), [ALICE, BOB]),
        (make_message(client_msg_id="tap-1", text="retry"), [ALICE, BOB]),
    ]

    try:
        with transaction.atomic():
            results = store.put_messages(batch)
    except BatchHasRetry:  # allowed: nothing may have been kept, and one-by-one still works
        assert [m.text for m in store.page_conversation(CONVERSATION)] == ["hello"]
        assert seqs_of(store, BOB) == [1]
        results = [store.put_message(m, recipient_ids=r) for m, r in batch]
    assert [r.created for r in results] == [True, False]
    assert results[1].message == original.message
    assert seqs_of(store, ALICE) == [1, 2]
    assert seqs_of(store, BOB) == [1, 2]


def test_batch_costs_the_queries_of_one_put(store: MessageStore, make_message: MakeMessage) -> None:
    store.put_message(make_message(), recipient_ids=[ALICE, BOB])

    with CaptureQueriesContext(connection) as one:
        store.put_messages([(make_message(), [ALICE, BOB])])
    with CaptureQueriesContext(connection) as forty:
        store.put_messages(
            [(make_message(sender_id=1000 + i), [1000 + i, *range(2000, 2100)]) for i in range(40)]
        )

    assert len(forty) == len(one)
    assert store.last_seq(2099) == 40


# --- append_events ----------------------------------------------------------------------------


def test_append_events_stores_kind_conversation_message_and_payload(
    store: MessageStore,
) -> None:
    seqs = store.append_events(
        [
            NewEvent(
                user_id=BOB,
                kind=EventKind.READ,
                conversation_id=CONVERSATION,
                message_id=55,
                payload={"last_read_id": 55, "nested": {"emoji": "🎉"}},
            ),
            NewEvent(
                user_id=CAROL,
                kind=EventKind.CONVERSATION_UPDATED,
                conversation_id=OTHER_CONVERSATION,
            ),
        ]
    )

    assert seqs == {BOB: 1, CAROL: 1}
    [bob_entry] = store.read_sync(BOB, after_seq=0, limit=10)
    assert (bob_entry.kind, bob_entry.conversation_id, bob_entry.message_id) == (
        EventKind.READ,
        CONVERSATION,
        55,
    )
    assert dict(bob_entry.payload) == {"last_read_id": 55, "nested": {"emoji": "🎉"}}
    [carol_entry] = store.read_sync(CAROL, after_seq=0, limit=10)
    assert (carol_entry.message_id, dict(carol_entry.payload)) == (None, {})
    assert store.append_events([]) == {}


# --- edits and tombstones -------------------------------------------------------------------


def test_edit_changes_history_in_place_and_notifies_recipients(
    store: MessageStore, make_message: MakeMessage
) -> None:
    message = send(store, make_message, text="helo")
    edited_at = message.created_at + timedelta(minutes=1)

    edited, seqs = store.edit_message(
        message.id, text="hello 👋", edited_at=edited_at, recipient_ids=[ALICE, BOB]
    )

    assert (edited.id, edited.text, edited.edited_at, edited.deleted_at) == (
        message.id,
        "hello 👋",
        edited_at,
        None,
    )
    assert edited.created_at == message.created_at
    assert seqs == {ALICE: 2, BOB: 2}
    assert store.page_conversation(CONVERSATION) == [edited]
    assert store.get_messages([message.id])[message.id] == edited
    [entry] = store.read_sync(BOB, after_seq=1, limit=10)
    assert (entry.kind, entry.message_id, entry.conversation_id) == (
        EventKind.EDITED,
        message.id,
        CONVERSATION,
    )


def test_tombstone_empties_the_text_and_keeps_the_place_in_history(
    store: MessageStore, make_message: MakeMessage
) -> None:
    before = send(store, make_message, text="before")
    doomed = send(store, make_message, text="regrettable")
    after = send(store, make_message, text="after")
    deleted_at = doomed.created_at + timedelta(seconds=5)

    tombstone, seqs = store.tombstone_message(
        doomed.id, deleted_at=deleted_at, recipient_ids=[ALICE, BOB, CAROL]
    )

    assert (tombstone.id, tombstone.text, tombstone.deleted_at) == (doomed.id, "", deleted_at)
    assert tombstone.is_deleted
    assert seqs == {ALICE: 4, BOB: 4, CAROL: 1}
    assert [m.id for m in store.page_conversation(CONVERSATION)] == [after.id, doomed.id, before.id]
    assert store.get_messages([doomed.id])[doomed.id].text == ""
    [entry] = store.read_sync(CAROL, after_seq=0, limit=10)
    assert (entry.kind, entry.message_id) == (EventKind.DELETED, doomed.id)


def test_editing_or_deleting_an_unknown_message_raises_and_assigns_no_seq(
    store: MessageStore,
) -> None:
    now = timezone.now()

    with pytest.raises(MessageNotFound):
        store.edit_message(424242, text="x", edited_at=now, recipient_ids=[ALICE])
    with pytest.raises(MessageNotFound):
        store.tombstone_message(424242, deleted_at=now, recipient_ids=[ALICE])

    assert store.last_seq(ALICE) == 0
    assert store.read_sync(ALICE, after_seq=0, limit=10) == []


def test_lock_message_reads_the_current_message_inside_a_transaction(
    store: MessageStore, make_message: MakeMessage
) -> None:
    stored = send(store, make_message, text="hello")
    store.tombstone_message(stored.id, deleted_at=timezone.now(), recipient_ids=[ALICE])

    with transaction.atomic():
        locked = store.lock_message(stored.id)
        unknown = store.lock_message(424242)

    assert locked == store.get_messages([stored.id])[stored.id]
    assert locked is not None
    assert locked.is_deleted
    assert unknown is None


# --- page_conversation ----------------------------------------------------------------------


@pytest.fixture
def history(store: MessageStore, make_message: MakeMessage) -> list[StoredMessage]:
    """Ten messages in CONVERSATION, oldest first, interleaved with noise elsewhere."""
    messages = []
    for number in range(10):
        messages.append(send(store, make_message, text=f"m{number}"))
        send(store, make_message, conversation_id=OTHER_CONVERSATION, text=f"other {number}")
    return messages


def test_page_without_cursor_is_the_newest_messages_newest_first(
    store: MessageStore, history: list[StoredMessage]
) -> None:
    assert store.page_conversation(CONVERSATION, limit=3) == history[:-4:-1]
    assert store.page_conversation(CONVERSATION) == history[::-1]


def test_page_before_is_the_newest_older_messages_newest_first(
    store: MessageStore, history: list[StoredMessage]
) -> None:
    page = store.page_conversation(CONVERSATION, before=history[6].id, limit=4)

    assert [m.text for m in page] == ["m5", "m4", "m3", "m2"]
    assert store.page_conversation(CONVERSATION, before=history[0].id) == []
    assert [m.text for m in store.page_conversation(CONVERSATION, before=history[2].id)] == [
        "m1",
        "m0",
    ]


def test_page_after_is_the_oldest_newer_messages_newest_first(
    store: MessageStore, history: list[StoredMessage]
) -> None:
    page = store.page_conversation(CONVERSATION, after=history[3].id, limit=3)

    assert [m.text for m in page] == ["m6", "m5", "m4"]
    assert store.page_conversation(CONVERSATION, after=history[-1].id) == []
    assert [m.text for m in store.page_conversation(CONVERSATION, after=0, limit=2)] == [
        "m1",
        "m0",
    ]


def test_paging_walks_the_whole_history_once(
    store: MessageStore, history: list[StoredMessage]
) -> None:
    seen: list[StoredMessage] = []
    page = store.page_conversation(CONVERSATION, limit=3)
    while page:
        seen.extend(page)
        page = store.page_conversation(CONVERSATION, before=page[-1].id, limit=3)

    assert seen == history[::-1]
    assert all(m.conversation_id == CONVERSATION for m in seen)


def test_page_of_an_empty_conversation_is_empty(store: MessageStore) -> None:
    assert store.page_conversation(999) == []


# --- read_sync, last_seq, count_messages ----------------------------------------------------


def test_read_sync_returns_entries_after_seq_in_order_up_to_limit(
    store: MessageStore, make_message: MakeMessage
) -> None:
    sent = [send(store, make_message, recipients=(ALICE, BOB)) for _ in range(5)]
    send(store, make_message, recipients=(CAROL,))

    page = store.read_sync(BOB, after_seq=1, limit=3)

    assert [entry.seq for entry in page] == [2, 3, 4]
    assert [entry.message_id for entry in page] == [m.id for m in sent[1:4]]
    assert all(entry.user_id == BOB for entry in page)
    assert [e.seq for e in store.read_sync(BOB, after_seq=4, limit=100)] == [5]
    assert store.read_sync(BOB, after_seq=5, limit=100) == []
    assert store.read_sync(DAVE, after_seq=0, limit=100) == []


def test_newest_message_ids_per_conversation_within_a_seq_range(
    store: MessageStore, make_message: MakeMessage
) -> None:
    first = send(store, make_message, recipients=(ALICE, BOB))  # BOB seq 1
    store.append_events([NewEvent(user_id=BOB, kind=EventKind.READ, conversation_id=CONVERSATION)])
    second = send(store, make_message, recipients=(ALICE, BOB))  # BOB seq 3
    other = send(store, make_message, recipients=(BOB, CAROL), conversation_id=7002)  # seq 4
    send(store, make_message, recipients=(ALICE, BOB))  # BOB seq 5, outside the range below

    assert store.newest_message_ids(BOB, after_seq=0, upto_seq=4) == {
        CONVERSATION: second.id,
        7002: other.id,
    }
    assert store.newest_message_ids(BOB, after_seq=0, upto_seq=2) == {CONVERSATION: first.id}
    assert store.newest_message_ids(BOB, after_seq=5, upto_seq=9) == {}


def test_last_seq_is_the_highest_assigned_sequence_number(
    store: MessageStore, make_message: MakeMessage
) -> None:
    for _ in range(3):
        send(store, make_message, recipients=(ALICE, BOB))
    store.append_events([NewEvent(user_id=BOB, kind=EventKind.READ, conversation_id=1)])

    assert (store.last_seq(ALICE), store.last_seq(BOB), store.last_seq(DAVE)) == (3, 4, 0)


def test_prune_sync_deletes_old_entries_oldest_first_and_keeps_numbering_and_history(
    store: MessageStore, make_message: MakeMessage
) -> None:
    now = timezone.now()
    old = [
        send(store, make_message, recipients=(ALICE, BOB), created_at=now - timedelta(days=d))
        for d in (42, 41, 40)
    ]  # seqs 1-3 for each
    send(store, make_message, recipients=(ALICE, BOB))  # seq 4, inside the window
    cutoff = now - timedelta(days=30)

    # Oldest first, at most `limit`: the first message's two entries.
    assert store.prune_sync(older_than=cutoff, limit=2) == 2
    assert [e.seq for e in store.read_sync(BOB, after_seq=0, limit=10)] == [2, 3, 4]
    assert store.prune_sync(older_than=cutoff, limit=100) == 4
    assert store.prune_sync(older_than=cutoff, limit=100) == 0

    # A reader after a pruned range sees the first entry that remains.
    assert [e.seq for e in store.read_sync(BOB, after_seq=0, limit=10)] == [4]
    assert store.last_seq(BOB) == 4
    # Numbering goes on; history is kept forever.
    assert store.put_message(make_message(), recipient_ids=(ALICE, BOB)).seqs[BOB] == 5
    assert set(store.get_messages([m.id for m in old])) == {m.id for m in old}


def test_count_messages_counts_newer_live_messages_optionally_not_from_one_sender(
    store: MessageStore, make_message: MakeMessage
) -> None:
    read_up_to = send(store, make_message, sender_id=BOB)
    send(store, make_message, sender_id=ALICE)
    send(store, make_message, sender_id=BOB)
    deleted = send(store, make_message, sender_id=BOB)
    send(store, make_message, sender_id=BOB, conversation_id=OTHER_CONVERSATION)
    store.tombstone_message(deleted.id, deleted_at=timezone.now(), recipient_ids=[])

    assert store.count_messages(CONVERSATION, after_id=0) == 3
    assert store.count_messages(CONVERSATION, after_id=read_up_to.id) == 2
    assert store.count_messages(CONVERSATION, after_id=read_up_to.id, not_from=ALICE) == 1
    assert store.count_messages(CONVERSATION, after_id=deleted.id) == 0


# --- concurrency ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SharedStore:
    """A store that several threads use at once; each thread calls ``connect()`` first."""

    store: MessageStore
    connect: Callable[[], None] = lambda: None


@pytest.fixture
def shared_store(
    store: MessageStore, transactional_db: None, tmp_path: Path
) -> Iterator[SharedStore]:
    """``store``, on a database several threads can write to at once (committing for real)."""
    if not (isinstance(store, DjangoMessageStore) and connections[store.using].vendor == "sqlite"):
        yield SharedStore(store)
        return
    # Django's SQLite test database is in memory with a shared cache, where a writer that
    # finds the database locked fails at once ("database table is locked") instead of
    # waiting. The embedded deployment uses a file in WAL mode, where writers queue: test
    # on one of those, with the deployment's connection options.
    alias = "message_store_concurrency"
    connections.settings[alias] = {
        **connections.settings[store.using],
        "NAME": str(tmp_path / "messages.sqlite3"),
    }

    def connect() -> None:
        # Connecting explicitly: the test case refuses to open connections lazily to
        # databases it was not declared with.
        connections[alias].connect()

    connect()
    with connections[alias].schema_editor() as editor:
        for model in (StoredMessageRecord, SyncEntryRecord, SyncCounter):
            editor.create_model(model)
    yield SharedStore(DjangoMessageStore(DATABASE=alias), connect)
    connections[alias].close()
    del connections[alias]
    del connections.settings[alias]


def run_in_threads(shared: SharedStore, work: Callable[[int], None], thread_count: int) -> None:
    """Run ``work(thread_number)`` in threads started together, each with its own connection."""
    errors: list[Exception] = []
    start = threading.Barrier(thread_count)

    def run(number: int) -> None:
        try:
            shared.connect()
            start.wait()
            work(number)
        except Exception as exc:  # noqa: BLE001 (reported by the main thread)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(thread_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    assert errors == []


def test_concurrent_puts_to_overlapping_users_get_unique_gap_free_seqs(
    shared_store: SharedStore, make_message: MakeMessage
) -> None:
    store = shared_store.store
    users = list(range(1, 9))
    sent: dict[int, list[int]] = {}  # message id -> recipients
    sent_lock = threading.Lock()

    def send_many(thread_number: int) -> None:
        rng = random.Random(thread_number)
        for _ in range(15):
            sender = rng.choice(users)
            # Unsorted, overlapping recipient sets: lock ordering is the store's job.
            recipients = [sender, *rng.sample(users, 4)]
            rng.shuffle(recipients)
            message = make_message(sender_id=sender)
            result = store.put_message(message, recipient_ids=recipients)
            assert set(result.seqs) == set(recipients)
            with sent_lock:
                sent[message.id] = recipients

    run_in_threads(shared_store, send_many, thread_count=6)

    assert len(sent) == 90
    for user_id in users:
        entries = store.read_sync(user_id, after_seq=0, limit=10_000)
        expected = {message_id for message_id, to in sent.items() if user_id in to}
        assert [entry.seq for entry in entries] == list(range(1, len(expected) + 1))
        assert {entry.message_id for entry in entries} == expected
        assert store.last_seq(user_id) == len(expected)


def test_concurrent_retries_of_one_send_store_it_once(
    shared_store: SharedStore, make_message: MakeMessage
) -> None:
    store = shared_store.store
    results: list[tuple[bool, int, dict[int, int]]] = []

    def retry(thread_number: int) -> None:
        message = make_message(client_msg_id="double-tap", text=f"attempt {thread_number}")
        result = store.put_message(message, recipient_ids=[ALICE, BOB])
        results.append((result.created, result.message.id, dict(result.seqs)))

    run_in_threads(shared_store, retry, thread_count=4)

    assert sorted(created for created, _, _ in results) == [False, False, False, True]
    assert len({message_id for _, message_id, _ in results}) == 1
    assert all(seqs[ALICE] == 1 for _, _, seqs in results)
    assert len(store.page_conversation(CONVERSATION)) == 1
    assert (store.last_seq(ALICE), store.last_seq(BOB)) == (1, 1)
