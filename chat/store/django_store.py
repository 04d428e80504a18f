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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, Max, Model
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
from .models import StoredMessageRecord, SyncCounter, SyncEntryRecord

# Both SQLite (SQLITE_MAX_VARIABLE_NUMBER = 32766 since 3.32) and PostgreSQL (65535) accept
# this many parameters in one statement; only bigger batches are split.
_MAX_PARAMS_PER_STATEMENT = 30_000

_MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "sender_id",
    "client_msg_id",
    "text",
    "created_at",
    "edited_at",
    "deleted_at",
)
_SYNC_COLUMNS = ("user_id", "seq", "kind", "conversation_id", "message_id", "payload", "created_at")

_MESSAGE_TABLE = StoredMessageRecord._meta.db_table
_SYNC_TABLE = SyncEntryRecord._meta.db_table
_COUNTER_TABLE = SyncCounter._meta.db_table

_Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


def _model_field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return field


def _message_from_row(row: Sequence[Any]) -> StoredMessage:
    """A row of ``_MESSAGE_COLUMNS`` (already converted to Python values)."""
    return StoredMessage(*row)


def _as_stored(message: NewMessage) -> StoredMessage:
    """The message as just stored (never edited or deleted yet)."""
    return StoredMessage(
        id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        client_msg_id=message.client_msg_id,
        text=message.text,
        created_at=message.created_at,
    )


def _message_entries(
    message: NewMessage, seqs: Mapping[int, int]
) -> list[tuple[int, int, str, int, int | None, Mapping[str, Any], datetime]]:
    """Sync entries announcing ``message`` to each recipient at its sequence number."""
    return [
        (
            user_id,
            seq,
            EventKind.MESSAGE,
            message.conversation_id,
            message.id,
            {},
            message.created_at,
        )
        for user_id, seq in seqs.items()
    ]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
            seqs = self._assign_seqs(cursor, user_ids)
            sender_seq = seqs.get(message.sender_id)
            if self._insert_messages(cursor, connection, [(message, sender_seq)]):
                self._insert_sync_entries(cursor, connection, _message_entries(message, seqs))
                return PutResult(message=_as_stored(message), created=True, seqs=seqs)
            # A retry: give the sequence numbers back (we still hold the counter rows, so
            # nobody else can have taken the next ones) and acknowledge the original.
            self._release_seqs(cursor, user_ids)
        row = (
            StoredMessageRecord.objects.using(self.using)
            .filter(sender_id=message.sender_id, client_msg_id=message.client_msg_id)
            .values_list(*_MESSAGE_COLUMNS, "sender_seq")
            .get()
        )
        original_sender_seq = row[-1]
        return PutResult(
            message=_message_from_row(row[:-1]),
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
        recipients_of = [sorted(set(recipients)) for _, recipients in batch]
        entry_counts: dict[int, int] = {}
        for recipients in recipients_of:
            for user_id in recipients:
                entry_counts[user_id] = entry_counts.get(user_id, 0) + 1
        connection = connections[self.using]
        with transaction.atomic(using=self.using, savepoint=False), connection.cursor() as cursor:
            last_seqs = self._assign_seqs(cursor, sorted(entry_counts), entry_counts)
            next_seq = {
                user_id: last_seqs[user_id] - entry_counts[user_id] + 1 for user_id in last_seqs
            }
            seqs_of: list[dict[int, int]] = []
            for recipients in recipients_of:
                seqs: dict[int, int] = {}
                for user_id in recipients:
                    seqs[user_id] = next_seq[user_id]
                    next_seq[user_id] += 1
                seqs_of.append(seqs)
            inserted = self._insert_messages(
                cursor,
                connection,
                [
                    (message, seqs.get(message.sender_id))
                    for (message, _), seqs in zip(batch, seqs_of, strict=True)
                ],
            )
            if inserted != len(batch):
                raise BatchHasRetry
            self._insert_sync_entries(
                cursor,
                connection,
                [
                    entry
                    for (message, _), seqs in zip(batch, seqs_of, strict=True)
                    for entry in _message_entries(message, seqs)
                ],
            )
        return [
            PutResult(
                message=_as_stored(message),
                created=True,
                seqs=seqs,
            )
            for (message, _), seqs in zip(batch, seqs_of, strict=True)
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
            seqs = self._assign_seqs(cursor, user_ids)
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
                StoredMessageRecord.objects.using(self.using)
                .select_for_update()
                .filter(id=message_id)
                .values_list(*_MESSAGE_COLUMNS)
                .first()
            )
            return None if row is None else _message_from_row(row)
        # SQLite has no row locks: a no-op UPDATE takes the database's write lock (waiting
        # for other writers) before the row is read, whatever the transaction mode.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {_MESSAGE_TABLE} SET id = id WHERE id = %s "  # noqa: S608 (constant table name)
                f"RETURNING {', '.join(_MESSAGE_COLUMNS)}",
                [message_id],
            )
            raw = cursor.fetchone()
        if raw is None:
            return None
        return _message_from_row(self._convert_message_row(raw, connection))

    # --- reads ----------------------------------------------------------------------------

    def get_messages(self, message_ids: Iterable[int]) -> dict[int, StoredMessage]:
        wanted = list(set(message_ids))
        found: dict[int, StoredMessage] = {}
        for chunk in _chunks(wanted, _MAX_PARAMS_PER_STATEMENT):
            rows = (
                StoredMessageRecord.objects.using(self.using)
                .filter(id__in=chunk)
                .values_list(*_MESSAGE_COLUMNS)
            )
            for row in rows:
                found[row[0]] = _message_from_row(row)
        return found

    def page_conversation(
        self,
        conversation_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        if limit <= 0:
            return []
        messages = StoredMessageRecord.objects.using(self.using).filter(
            conversation_id=conversation_id
        )
        if before is not None:
            messages = messages.filter(id__lt=before)
        if after is not None:
            # The oldest `limit` after the cursor, returned newest first like every page.
            rows = list(
                messages.filter(id__gt=after).order_by("id").values_list(*_MESSAGE_COLUMNS)[:limit]
            )
            rows.reverse()
        else:
            rows = list(messages.order_by("-id").values_list(*_MESSAGE_COLUMNS)[:limit])
        return [_message_from_row(row) for row in rows]

    def count_messages(
        self, conversation_id: int, *, after_id: int, not_from: int | None = None
    ) -> int:
        messages = StoredMessageRecord.objects.using(self.using).filter(
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
            .values_list(*_SYNC_COLUMNS)[:limit]
        )
        return [
            SyncEntry(
                user_id=row[0],
                seq=row[1],
                kind=row[2],
                conversation_id=row[3],
                message_id=row[4],
                payload=row[5],
                created_at=row[6],
            )
            for row in rows
        ]

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
        # One statement: the ranges joined as a VALUES list (an index range scan each),
        # aggregated in the database. Written in SQL: the ORM's OR of hundreds of Q objects
        # cost tens of milliseconds of compilation, holding the GIL the event loop needs.
        newest: dict[tuple[int, int], int] = {}
        connection = connections[self.using]
        with connection.cursor() as cursor:
            for chunk in _chunks(ranges, _MAX_PARAMS_PER_STATEMENT // 3):
                values = ", ".join(["(%s, %s, %s)"] * len(chunk))
                cursor.execute(
                    f"SELECT s.user_id, s.conversation_id, MAX(s.message_id) FROM {_SYNC_TABLE} s "  # noqa: S608 (constant fragments)
                    f"JOIN (VALUES {values}) AS r ON s.user_id = r.column1 "
                    "AND s.seq > r.column2 AND s.seq <= r.column3 "
                    "WHERE s.kind = %s AND s.message_id IS NOT NULL "
                    "GROUP BY s.user_id, s.conversation_id",
                    [value for item in chunk for value in item] + [EventKind.MESSAGE],
                )
                for user_id, conversation_id, message_id in cursor.fetchall():
                    key = (user_id, conversation_id)
                    newest[key] = max(newest.get(key, 0), message_id)
        return newest

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

    # --- statements -----------------------------------------------------------------------

    def _assign_seqs(
        self,
        cursor: CursorWrapper,
        user_ids: Sequence[int],
        counts: Mapping[int, int] | None = None,
    ) -> dict[int, int]:
        """Move each user's counter by ``counts[user]`` (default 1) and return its new value,
        the last number taken (ids sorted ascending: the lock order)."""
        if cursor.db.vendor == "postgresql":
            # Arrays keep the statement text constant whatever the batch (psycopg caches its
            # parsing) and unnest keeps their order, so rows are locked in ascending order.
            cursor.execute(
                f"INSERT INTO {_COUNTER_TABLE} (user_id, last_seq) "  # noqa: S608 (constant table name)
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[]) "
                f"ON CONFLICT (user_id) DO UPDATE SET last_seq = {_COUNTER_TABLE}.last_seq "
                "+ excluded.last_seq RETURNING user_id, last_seq",
                [list(user_ids), [1 if counts is None else counts[u] for u in user_ids]],
            )
            return dict(cursor.fetchall())
        seqs: dict[int, int] = {}
        for chunk in _chunks(user_ids, _MAX_PARAMS_PER_STATEMENT // 2):
            values = ", ".join(["(%s, %s)"] * len(chunk))
            params: list[int] = []
            for user_id in chunk:
                params += [user_id, 1 if counts is None else counts[user_id]]
            cursor.execute(
                f"INSERT INTO {_COUNTER_TABLE} (user_id, last_seq) VALUES {values} "  # noqa: S608 (table name is a constant)
                f"ON CONFLICT (user_id) DO UPDATE SET last_seq = {_COUNTER_TABLE}.last_seq "
                "+ excluded.last_seq RETURNING user_id, last_seq",
                params,
            )
            seqs.update(cursor.fetchall())
        return seqs

    def _release_seqs(self, cursor: CursorWrapper, user_ids: Sequence[int]) -> None:
        """Undo ``_assign_seqs`` within the same transaction."""
        for chunk in _chunks(user_ids, _MAX_PARAMS_PER_STATEMENT):
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {_COUNTER_TABLE} SET last_seq = last_seq - 1 "  # noqa: S608 (constant table name)
                f"WHERE user_id IN ({placeholders})",
                list(chunk),
            )

    def _insert_messages(
        self,
        cursor: CursorWrapper,
        connection: BaseDatabaseWrapper,
        rows: Sequence[tuple[NewMessage, int | None]],
    ) -> int:
        """Insert ``(message, sender_seq)`` rows; return how many were new (the others'
        (sender_id, client_msg_id) was already stored)."""
        created_at_field = _model_field(StoredMessageRecord, "created_at")
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {_MESSAGE_TABLE} "  # noqa: S608 (constant table name)
                "(id, conversation_id, sender_id, client_msg_id, text, created_at, sender_seq) "
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], "
                "%s::text[], %s::timestamptz[], %s::bigint[]) "
                "ON CONFLICT (sender_id, client_msg_id) DO NOTHING RETURNING id",
                [
                    [m.id for m, _ in rows],
                    [m.conversation_id for m, _ in rows],
                    [m.sender_id for m, _ in rows],
                    [m.client_msg_id for m, _ in rows],
                    [m.text for m, _ in rows],
                    [m.created_at for m, _ in rows],
                    [sender_seq for _, sender_seq in rows],
                ],
            )
            return len(cursor.fetchall())
        params: list[Any] = []
        for message, sender_seq in rows:
            params += [
                message.id,
                message.conversation_id,
                message.sender_id,
                message.client_msg_id,
                message.text,
                created_at_field.get_db_prep_save(message.created_at, connection),
                sender_seq,
            ]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        # Batches are bounded by the caller (SEND_BATCH_MAX) far below the parameter limit.
        cursor.execute(
            f"INSERT INTO {_MESSAGE_TABLE} "  # noqa: S608 (constant table name)
            "(id, conversation_id, sender_id, client_msg_id, text, created_at, sender_seq) "
            f"VALUES {values} "
            "ON CONFLICT (sender_id, client_msg_id) DO NOTHING RETURNING id",
            params,
        )
        return len(cursor.fetchall())

    def _insert_sync_entries(
        self,
        cursor: CursorWrapper,
        connection: BaseDatabaseWrapper,
        entries: Sequence[tuple[int, int, str, int, int | None, Mapping[str, Any], datetime]],
    ) -> None:
        """Multi-row INSERTs of (user_id, seq, kind, conversation_id, message_id, payload,
        created_at)."""
        if not entries:
            return
        if connection.vendor == "postgresql":
            columns = ", ".join(_SYNC_COLUMNS)
            cursor.execute(
                f"INSERT INTO {_SYNC_TABLE} ({columns}) "  # noqa: S608 (constant table name)
                "SELECT u, s, k, c, m, p::jsonb, t FROM unnest(%s::bigint[], %s::bigint[], "
                "%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::timestamptz[]) "
                "AS e(u, s, k, c, m, p, t)",
                [
                    [e[0] for e in entries],
                    [e[1] for e in entries],
                    [e[2] for e in entries],
                    [e[3] for e in entries],
                    [e[4] for e in entries],
                    [orjson.dumps(dict(e[5])).decode() if e[5] else "{}" for e in entries],
                    [e[6] for e in entries],
                ],
            )
            return
        payload_field = _model_field(SyncEntryRecord, "payload")
        created_at_field = _model_field(SyncEntryRecord, "created_at")
        empty_payload = payload_field.get_db_prep_save({}, connection)
        prepared_times: dict[datetime, Any] = {}  # a batch shares few distinct times
        rows_per_statement = _MAX_PARAMS_PER_STATEMENT // len(_SYNC_COLUMNS)
        columns = ", ".join(_SYNC_COLUMNS)
        for chunk in _chunks(entries, rows_per_statement):
            params: list[Any] = []
            for user_id, seq, kind, conversation_id, message_id, payload, created_at in chunk:
                db_payload = (
                    payload_field.get_db_prep_save(dict(payload), connection)
                    if payload
                    else empty_payload
                )
                db_created_at = prepared_times.get(created_at)
                if db_created_at is None:
                    db_created_at = prepared_times[created_at] = created_at_field.get_db_prep_save(
                        created_at, connection
                    )
                params += [
                    user_id,
                    seq,
                    kind,
                    conversation_id,
                    message_id,
                    db_payload,
                    db_created_at,
                ]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {_SYNC_TABLE} ({columns}) VALUES {values}",  # noqa: S608 (constant table name)
                params,
            )

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
        datetime_field = _model_field(StoredMessageRecord, "created_at")
        params = [
            datetime_field.get_db_prep_save(value, connection)
            if isinstance(value, datetime)
            else value
            for value in set_params
        ]
        live_only_sql = " AND deleted_at IS NULL" if only_live else ""
        with transaction.atomic(using=self.using, savepoint=False), connection.cursor() as cursor:
            # The row lock taken here orders concurrent edits of one message before they
            # touch any counter, so edits cannot deadlock with each other either.
            cursor.execute(
                f"UPDATE {_MESSAGE_TABLE} SET {set_sql} "  # noqa: S608 (constant fragments only)
                f"WHERE id = %s{live_only_sql} RETURNING {', '.join(_MESSAGE_COLUMNS)}",
                [*params, message_id],
            )
            row = cursor.fetchone()
            if row is not None:
                stored = _message_from_row(self._convert_message_row(row, connection))
                seqs = self._assign_seqs(cursor, user_ids)
                self._insert_sync_entries(
                    cursor,
                    connection,
                    [
                        (
                            user_id,
                            seq,
                            event_kind,
                            stored.conversation_id,
                            stored.id,
                            {},
                            event_time,
                        )
                        for user_id, seq in seqs.items()
                    ],
                )
                return stored, seqs
        # Raised outside the transaction block: nothing was written, and a caller that
        # handles the error can go on using its own transaction.
        raise MessageNotFound(message_id)

    def _convert_message_row(
        self, row: Sequence[Any], connection: BaseDatabaseWrapper
    ) -> list[Any]:
        """Apply the converters the ORM would (SQLite returns datetimes as text or naive)."""
        converted = []
        for name, raw_value in zip(_MESSAGE_COLUMNS, row, strict=True):
            column = _model_field(StoredMessageRecord, name).get_col(_MESSAGE_TABLE)
            # The same two sources of converters as the SQL compiler uses.
            converters: list[_Converter] = [
                *connection.ops.get_db_converters(column),
                *column.get_db_converters(connection),
            ]
            value = raw_value
            for convert in converters:
                value = convert(value, column, connection)
            converted.append(value)
        return converted
