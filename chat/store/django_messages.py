"""Statements on the message table of the Django-database store, and its rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from chatproject import sql

from .base import NewMessage, StoredMessage
from .django_sql import model_field
from .models import StoredMessageRecord

MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "sender_id",
    "client_msg_id",
    "text",
    "created_at",
    "edited_at",
    "deleted_at",
)
MESSAGE_TABLE = StoredMessageRecord._meta.db_table
_RETURNING = f"RETURNING {', '.join(MESSAGE_COLUMNS)}"

_Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    """A row of ``MESSAGE_COLUMNS`` (already converted to Python values)."""
    return StoredMessage(*row)


def as_stored(message: NewMessage) -> StoredMessage:
    """The message as just stored (never edited or deleted yet)."""
    return StoredMessage(*message.sent_fields())


def insert_messages(
    cursor: CursorWrapper,
    connection: BaseDatabaseWrapper,
    rows: Sequence[tuple[NewMessage, int | None]],
) -> int:
    """Insert ``(message, sender_seq)`` rows; return how many were new (the others'
    (sender_id, client_msg_id) was already stored)."""
    if connection.vendor == "postgresql":
        cursor.execute(
            f"INSERT INTO {MESSAGE_TABLE} "  # noqa: S608 (constant table name)
            "(id, conversation_id, sender_id, client_msg_id, text, created_at, sender_seq) "
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], "
            "%s::text[], %s::timestamptz[], %s::bigint[]) "
            "ON CONFLICT (sender_id, client_msg_id) DO NOTHING RETURNING id",
            [
                sql.int_array(m.id for m, _ in rows),
                sql.int_array(m.conversation_id for m, _ in rows),
                sql.int_array(m.sender_id for m, _ in rows),
                sql.text_array(m.client_msg_id for m, _ in rows),
                sql.text_array(m.text for m, _ in rows),
                sql.time_array(m.created_at for m, _ in rows),
                sql.nullable_int_array(sender_seq for _, sender_seq in rows),
            ],
        )
        return len(cursor.fetchall())
    created_at_field = model_field(StoredMessageRecord, "created_at")
    params: list[Any] = []
    for message, sender_seq in rows:
        *as_is, created_at = message.sent_fields()  # only the time needs preparing
        params += [*as_is, created_at_field.get_db_prep_save(created_at, connection), sender_seq]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    # Batches are bounded by the caller (SEND_BATCH_MAX) far below the parameter limit.
    cursor.execute(
        f"INSERT INTO {MESSAGE_TABLE} "  # noqa: S608 (constant table name)
        "(id, conversation_id, sender_id, client_msg_id, text, created_at, sender_seq) "
        f"VALUES {values} "
        "ON CONFLICT (sender_id, client_msg_id) DO NOTHING RETURNING id",
        params,
    )
    return len(cursor.fetchall())


def update_message(
    cursor: CursorWrapper,
    message_id: int,
    *,
    set_sql: str,
    set_params: Sequence[Any],
    only_live: bool,
) -> StoredMessage | None:
    """``UPDATE`` one message row in place (``set_sql`` with ``set_params``; datetimes are
    prepared here) and return it as changed; None if there is no such (live) row."""
    connection = cursor.db
    datetime_field = model_field(StoredMessageRecord, "created_at")
    params = [
        datetime_field.get_db_prep_save(value, connection) if isinstance(value, datetime) else value
        for value in set_params
    ]
    live_only_sql = " AND deleted_at IS NULL" if only_live else ""
    cursor.execute(
        f"UPDATE {MESSAGE_TABLE} SET {set_sql} "  # noqa: S608 (constant fragments only)
        f"WHERE id = %s{live_only_sql} {_RETURNING}",
        [*params, message_id],
    )
    row = cursor.fetchone()
    return None if row is None else message_from_row(_convert_message_row(row, connection))


def lock_message_sqlite(cursor: CursorWrapper, message_id: int) -> StoredMessage | None:
    """SQLite has no row locks: a no-op UPDATE takes the database's write lock (waiting
    for other writers) before the row is read, whatever the transaction mode."""
    return update_message(cursor, message_id, set_sql="id = id", set_params=[], only_live=False)


def _convert_message_row(row: Sequence[Any], connection: BaseDatabaseWrapper) -> list[Any]:
    """Apply the converters the ORM would (SQLite returns datetimes as text or naive)."""
    converted = []
    for name, raw_value in zip(MESSAGE_COLUMNS, row, strict=True):
        column = model_field(StoredMessageRecord, name).get_col(MESSAGE_TABLE)
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
