"""Statements on the sync queues of the Django-database store, and their rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from chatproject import sql

from .base import EventKind, SyncEntry
from .django_sql import MAX_PARAMS_PER_STATEMENT, chunks, model_field
from .models import SyncEntryRecord

SYNC_COLUMNS = ("user_id", "seq", "kind", "conversation_id", "message_id", "payload", "created_at")
_SYNC_TABLE = SyncEntryRecord._meta.db_table

# One row of SYNC_COLUMNS, as Python values.
EntryRow = tuple[int, int, str, int, int | None, Mapping[str, Any], datetime]


def entry_from_row(row: Sequence[Any]) -> SyncEntry:
    """A row of ``SYNC_COLUMNS`` (already converted to Python values)."""
    return SyncEntry(*row)


def entries_for(
    seqs: Mapping[int, int], kind: str, conversation_id: int, message_id: int, at: datetime
) -> list[EntryRow]:
    """Entries announcing ``kind`` of one message to each recipient at its sequence number
    (with an empty payload: readers load the message itself)."""
    return [
        (user_id, seq, kind, conversation_id, message_id, {}, at) for user_id, seq in seqs.items()
    ]


def insert_entries(
    cursor: CursorWrapper, connection: BaseDatabaseWrapper, entries: Sequence[EntryRow]
) -> None:
    """Multi-row INSERTs of ``EntryRow``s."""
    if not entries:
        return
    if connection.vendor == "postgresql":
        _insert_as_arrays(cursor, entries)
    else:
        _insert_as_values(cursor, connection, entries)


def _insert_as_arrays(cursor: CursorWrapper, entries: Sequence[EntryRow]) -> None:
    """One statement whatever the batch: arrays keep its text constant for psycopg."""
    columns = ", ".join(SYNC_COLUMNS)
    cursor.execute(
        f"INSERT INTO {_SYNC_TABLE} ({columns}) "  # noqa: S608 (constant table name)
        "SELECT u, s, k, c, m, p::jsonb, t FROM unnest(%s::bigint[], %s::bigint[], "
        "%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::timestamptz[]) "
        "AS e(u, s, k, c, m, p, t)",
        [
            sql.int_array(e[0] for e in entries),
            sql.int_array(e[1] for e in entries),
            sql.text_array(e[2] for e in entries),
            sql.int_array(e[3] for e in entries),
            sql.nullable_int_array(e[4] for e in entries),
            sql.text_array(orjson.dumps(dict(e[5])).decode() if e[5] else "{}" for e in entries),
            sql.time_array(e[6] for e in entries),
        ],
    )


def _insert_as_values(
    cursor: CursorWrapper, connection: BaseDatabaseWrapper, entries: Sequence[EntryRow]
) -> None:
    """``INSERT ... VALUES`` lists, split only past the parameter limit."""
    payload_field = model_field(SyncEntryRecord, "payload")
    created_at_field = model_field(SyncEntryRecord, "created_at")
    empty_payload = payload_field.get_db_prep_save({}, connection)
    prepared_times: dict[datetime, Any] = {}  # a batch shares few distinct times
    columns = ", ".join(SYNC_COLUMNS)
    for chunk in chunks(entries, MAX_PARAMS_PER_STATEMENT // len(SYNC_COLUMNS)):
        params: list[Any] = []
        for *ids_and_kind, payload, created_at in chunk:
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
            params += [*ids_and_kind, db_payload, db_created_at]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
        cursor.execute(
            f"INSERT INTO {_SYNC_TABLE} ({columns}) VALUES {values}",  # noqa: S608 (constant table name)
            params,
        )


def newest_per_range(
    cursor: CursorWrapper, ranges: Sequence[tuple[int, int, int]]
) -> dict[tuple[int, int], int]:
    """``MessageStore.newest_message_ids_many`` in one statement per chunk of ranges: the
    ranges joined as a VALUES list (an index range scan each), aggregated in the database.
    Written in SQL: the ORM's OR of hundreds of Q objects cost tens of milliseconds of
    compilation, holding the GIL the event loop needs."""
    newest: dict[tuple[int, int], int] = {}
    for chunk in chunks(ranges, MAX_PARAMS_PER_STATEMENT // 3):
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
