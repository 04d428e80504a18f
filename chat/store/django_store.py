"""The message store kept in a Django database (SQLite embedded, PostgreSQL in production).

Tables are in ``chat.store.models``. The send path is a fixed number of statements whatever
the number of recipients, inside one transaction:

1. one ``INSERT ... ON CONFLICT (user_id) DO UPDATE SET last_seq = last_seq + 1 RETURNING``
   on the counter table assigns every recipient's next sequence number. User ids are sorted
   ascending so concurrent transactions lock counter rows in the same order (no deadlock on
   PostgreSQL; SQLite takes one database-wide write lock anyway). The row locks are held to
   commit, so sequence numbers are never duplicated, and a rolled-back transaction takes its
   increments with it, so they are never skipped.
2. one ``INSERT ... ON CONFLICT (sender_id, client_msg_id) DO NOTHING RETURNING id`` stores
   the message; no returned row means a retry of an already stored message.
3. one multi-row ``INSERT`` appends the sync entries.

A retry undoes step 1 with one ``UPDATE`` (the transaction still holds the counter rows, so
nobody else can have moved them) and reads the original message, whose row keeps the
sender's sequence number. No savepoint is used: when the caller already has a transaction
open, a failure here rolls back the caller's whole transaction, which is what atomicity
with the caller's own writes requires.

Message events in sync queues carry the message id and an empty payload: readers load the
message's current state with ``get_messages`` rather than every queue holding a copy of a
text of up to 100,000 characters.

``OPTIONS={"DATABASE": "alias"}`` selects the database connection (default ``"default"``).

The statements live by table: ``django_counters`` (step 1), ``django_messages`` (step 2,
edits and locks), ``django_sync`` (step 3 and the sync-queue aggregate); this class orders
them into transactions and answers the reads through the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Max, QuerySet
from django.utils import timezone

from .base import (
    BatchHasRetry,
    EventKind,
    MessageNotFound,
    MessageStore,
    NewEvent,
    NewMessage,
    PutResult,
    StoredMessage,
    SyncEntry,
)
from .django_counters import assign_seqs, entries_per_user, release_seqs, spread_seqs
from .django_messages import (
    MESSAGE_COLUMNS,
    as_stored,
    insert_messages,
    lock_message_sqlite,
    message_from_row,
    update_message,
)
from .django_sql import MAX_PARAMS_PER_STATEMENT, chunks
from .django_sync import (
    SYNC_COLUMNS,
    EntryRow,
    entries_for,
    entry_from_row,
    insert_entries,
    newest_per_range,
)
from .models import StoredMessageRecord, SyncCounter, SyncEntryRecord


def _message_entries(message: NewMessage, seqs: dict[int, int]) -> list[EntryRow]:
    """Sync entries announcing ``message`` to each recipient at its sequence number."""
    return entries_for(
        seqs, EventKind.MESSAGE, message.conversation_id, message.id, message.created_at
    )


class DjangoMessageStore(MessageStore):
    """``MessageStore`` on Django's database layer; see the module docstring."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.using: str = options.get("DATABASE", "default")

    # --- writes ---------------------------------------------------------------------------

    def put_message(self, message: NewMessage, *, recipient_ids: Iterable[int]) -> PutResult:
        user_ids = sorted(set(recipient_ids))
        connection = connections[self.using]
        with transaction.atomic(using=self.using, savepoint=False), connection.cursor() as cursor:
            seqs = assign_seqs(cursor, user_ids)
            sender_seq = seqs.get(message.sender_id)
            if insert_messages(cursor, connection, [(message, sender_seq)]):
                self._insert_sync_entries(cursor, connection, _message_entries(message, seqs))
                return PutResult(message=as_stored(message), created=True, seqs=seqs)
            # A retry: give the sequence numbers back (we still hold the counter rows, so
            # nobody else can have taken the next ones) and acknowledge the original.
            release_seqs(cursor, user_ids)
        row = (
            StoredMessageRecord.objects.using(self.using)
            .filter(sender_id=message.sender_id, client_msg_id=message.client_msg_id)
            .values_list(*MESSAGE_COLUMNS, "sender_seq")
            .get()
        )
        original_sender_seq = row[-1]
        return PutResult(
            message=message_from_row(row[:-1]),
            created=False,
            seqs={} if original_sender_seq is None else {message.sender_id: original_sender_seq},
        )

    def put_messages(self, batch: Sequence[tuple[NewMessage, Sequence[int]]]) -> list[PutResult]:
        """Group commit: the same three statements as ``put_message`` for the whole batch.

        Each user's counter moves once by the number of entries the batch gives them, and
        the entries take those numbers in batch order. A message already stored (a client
        retry) would leave its numbers unused, so the batch is refused instead
        (``BatchHasRetry``, raised inside the transaction: the caller rolls back).
        """
        keys = {(message.sender_id, message.client_msg_id) for message, _ in batch}
        if len(batch) <= 1 or len(keys) != len(batch):
            return super().put_messages(batch)
        messages = [message for message, _ in batch]
        recipients_of = [sorted(set(recipients)) for _, recipients in batch]
        counts = entries_per_user(recipients_of)
        connection = connections[self.using]
        with transaction.atomic(using=self.using, savepoint=False), connection.cursor() as cursor:
            last_seqs = assign_seqs(cursor, sorted(counts), counts)
            seqs_of = spread_seqs(recipients_of, last_seqs, counts)
            numbered = list(zip(messages, seqs_of, strict=True))
            rows = [(message, seqs.get(message.sender_id)) for message, seqs in numbered]
            if insert_messages(cursor, connection, rows) != len(batch):
                raise BatchHasRetry
            entries = [entry for pair in numbered for entry in _message_entries(*pair)]
            self._insert_sync_entries(cursor, connection, entries)
        return [
            PutResult(message=as_stored(message), created=True, seqs=seqs)
            for message, seqs in numbered
        ]

    def append_events(self, events: Sequence[NewEvent]) -> dict[int, int]:
        if not events:
            return {}
        by_user = {event.user_id: event for event in events}
        if len(by_user) != len(events):
            raise ValueError("append_events takes at most one event per user per call")
        user_ids = sorted(by_user)
        connection = connections[self.using]
        with transaction.atomic(using=self.using, savepoint=False), connection.cursor() as cursor:
            seqs = assign_seqs(cursor, user_ids)
            now = timezone.now()
            self._insert_sync_entries(
                cursor,
                connection,
                [
                    (
                        user_id,
                        seqs[user_id],
                        by_user[user_id].kind,
                        by_user[user_id].conversation_id,
                        by_user[user_id].message_id,
                        by_user[user_id].payload,
                        now,
                    )
                    for user_id in user_ids
                ],
            )
        return seqs

    def edit_message(
        self, message_id: int, *, text: str, edited_at: datetime, recipient_ids: Iterable[int]
    ) -> tuple[StoredMessage, dict[int, int]]:
        # A tombstone is not edited back to life: it counts as not found.
        return self._change_message(
            message_id,
            set_sql="text = %s, edited_at = %s",
            set_params=[text, edited_at],
            only_live=True,
            event_kind=EventKind.EDITED,
            event_time=edited_at,
            recipient_ids=recipient_ids,
        )

    def tombstone_message(
        self, message_id: int, *, deleted_at: datetime, recipient_ids: Iterable[int]
    ) -> tuple[StoredMessage, dict[int, int]]:
        # Deleting twice keeps the first deletion time but still notifies the recipients.
        return self._change_message(
            message_id,
            set_sql="text = '', deleted_at = COALESCE(deleted_at, %s)",
            set_params=[deleted_at],
            only_live=False,
            event_kind=EventKind.DELETED,
            event_time=deleted_at,
            recipient_ids=recipient_ids,
        )

    def lock_message(self, message_id: int) -> StoredMessage | None:
        connection = connections[self.using]
        if not connection.in_atomic_block:
            raise RuntimeError("lock_message needs the caller's transaction (atomic block)")
        if connection.vendor == "postgresql":
            row = (
                self._messages()
                .select_for_update()
                .filter(id=message_id)
                .values_list(*MESSAGE_COLUMNS)
                .first()
            )
            return None if row is None else message_from_row(row)
        with connection.cursor() as cursor:
            return lock_message_sqlite(cursor, message_id)

    # --- reads ----------------------------------------------------------------------------

    def get_messages(self, message_ids: Iterable[int]) -> dict[int, StoredMessage]:
        wanted = list(set(message_ids))
        found: dict[int, StoredMessage] = {}
        for chunk in chunks(wanted, MAX_PARAMS_PER_STATEMENT):
            for row in self._messages().filter(id__in=chunk).values_list(*MESSAGE_COLUMNS):
                found[row[0]] = message_from_row(row)
        return found

    def _newest_before(
        self, conversation_id: int, *, before: int | None, limit: int
    ) -> list[StoredMessage]:
        rows = self._history(conversation_id, before).order_by("-id")
        return [message_from_row(row) for row in rows.values_list(*MESSAGE_COLUMNS)[:limit]]

    def _oldest_after(
        self, conversation_id: int, *, after: int, before: int | None, limit: int
    ) -> list[StoredMessage]:
        rows = self._history(conversation_id, before).filter(id__gt=after).order_by("id")
        return [message_from_row(row) for row in rows.values_list(*MESSAGE_COLUMNS)[:limit]]

    def count_messages(
        self, conversation_id: int, *, after_id: int, not_from: int | None = None
    ) -> int:
        messages = self._messages().filter(
            conversation_id=conversation_id, id__gt=after_id, deleted_at__isnull=True
        )
        if not_from is not None:
            messages = messages.exclude(sender_id=not_from)
        return messages.count()

    def read_sync(self, user_id: int, *, after_seq: int, limit: int) -> list[SyncEntry]:
        if limit <= 0:
            return []
        rows = (
            SyncEntryRecord.objects.using(self.using)
            .filter(user_id=user_id, seq__gt=after_seq)
            .order_by("seq")
            .values_list(*SYNC_COLUMNS)[:limit]
        )
        return [entry_from_row(row) for row in rows]

    def newest_message_ids(self, user_id: int, *, after_seq: int, upto_seq: int) -> dict[int, int]:
        # One range scan of the (user_id, seq) index, aggregated in the database.
        rows = (
            SyncEntryRecord.objects.using(self.using)
            .filter(
                user_id=user_id,
                seq__gt=after_seq,
                seq__lte=upto_seq,
                kind=EventKind.MESSAGE,
                message_id__isnull=False,
            )
            .values("conversation_id")
            .annotate(newest=Max("message_id"))
            .values_list("conversation_id", "newest")
        )
        return dict(rows)

    def newest_message_ids_many(
        self, ranges: Sequence[tuple[int, int, int]]
    ) -> dict[tuple[int, int], int]:
        if not ranges:
            return {}
        with connections[self.using].cursor() as cursor:
            return newest_per_range(cursor, ranges)

    def last_seqs(self, user_ids: Iterable[int]) -> dict[int, int]:
        wanted = set(user_ids)
        found = dict(
            SyncCounter.objects.using(self.using)
            .filter(user_id__in=wanted)
            .values_list("user_id", "last_seq")
        )
        return {user_id: found.get(user_id, 0) for user_id in wanted}

    def last_seq(self, user_id: int) -> int:
        last = (
            SyncCounter.objects.using(self.using)
            .filter(user_id=user_id)
            .values_list("last_seq", flat=True)
            .first()
        )
        return last or 0

    def prune_sync(self, *, older_than: datetime, limit: int) -> int:
        if limit <= 0:
            return 0
        records = SyncEntryRecord.objects.using(self.using)
        # One bounded statement per call (the created_at index finds the oldest): a delete
        # of a day's entries at once would hold its locks and WAL for minutes.
        oldest = records.filter(created_at__lt=older_than).order_by("created_at", "id")
        deleted, _ = records.filter(id__in=oldest.values("id")[:limit]).delete()
        return deleted

    # --- helpers ------------------------------------------------------------------------

    def _messages(self) -> QuerySet[StoredMessageRecord]:
        return StoredMessageRecord.objects.using(self.using)

    def _history(self, conversation_id: int, before: int | None) -> QuerySet[StoredMessageRecord]:
        messages = self._messages().filter(conversation_id=conversation_id)
        return messages if before is None else messages.filter(id__lt=before)

    def _insert_sync_entries(
        self, cursor: CursorWrapper, connection: BaseDatabaseWrapper, entries: Sequence[EntryRow]
    ) -> None:
        # A method (not only django_sync's function) so tests can fail the last write.
        insert_entries(cursor, connection, entries)

    def _change_message(
        self,
        message_id: int,
        *,
        set_sql: str,
        set_params: list[Any],
        only_live: bool,
        event_kind: str,
        event_time: datetime,
        recipient_ids: Iterable[int],
    ) -> tuple[StoredMessage, dict[int, int]]:
        """Update the message row in place and append ``event_kind`` to each recipient."""
        user_ids = sorted(set(recipient_ids))
        connection = connections[self.using]
        with transaction.atomic(using=self.using, savepoint=False), connection.cursor() as cursor:
            # The row lock taken here orders concurrent edits of one message before they
            # touch any counter, so edits cannot deadlock with each other either.
            stored = update_message(
                cursor, message_id, set_sql=set_sql, set_params=set_params, only_live=only_live
            )
            if stored is not None:
                seqs = assign_seqs(cursor, user_ids)
                entries = entries_for(
                    seqs, event_kind, stored.conversation_id, stored.id, event_time
                )
                self._insert_sync_entries(cursor, connection, entries)
                return stored, seqs
        # Raised outside the transaction block: nothing was written, and a caller that
        # handles the error can go on using its own transaction.
        raise MessageNotFound(message_id)
