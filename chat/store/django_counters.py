"""The per-user sequence counters of the Django-database store.

Every write that appends to sync queues first moves the recipients' counters in one
``INSERT ... ON CONFLICT (user_id) DO UPDATE ... RETURNING``, user ids ascending so that
concurrent transactions lock counter rows in the same order (see ``django_store``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.db.backends.utils import CursorWrapper

from chatproject import sql

from .django_sql import MAX_PARAMS_PER_STATEMENT, chunks
from .models import SyncCounter

_COUNTER_TABLE = SyncCounter._meta.db_table


def assign_seqs(
    cursor: CursorWrapper, user_ids: Sequence[int], counts: Mapping[int, int] | None = None
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
            [
                sql.int_array(user_ids),
                sql.int_array(1 if counts is None else counts[u] for u in user_ids),
            ],
        )
        return dict(cursor.fetchall())
    seqs: dict[int, int] = {}
    for chunk in chunks(user_ids, MAX_PARAMS_PER_STATEMENT // 2):
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


def release_seqs(cursor: CursorWrapper, user_ids: Sequence[int]) -> None:
    """Undo ``assign_seqs`` (by one each) within the same transaction."""
    for chunk in chunks(user_ids, MAX_PARAMS_PER_STATEMENT):
        placeholders = ", ".join(["%s"] * len(chunk))
        cursor.execute(
            f"UPDATE {_COUNTER_TABLE} SET last_seq = last_seq - 1 "  # noqa: S608 (constant table name)
            f"WHERE user_id IN ({placeholders})",
            list(chunk),
        )


def entries_per_user(recipients_of: Sequence[Sequence[int]]) -> dict[int, int]:
    """How many entries a batch gives each user: how far its counter moves."""
    counts: dict[int, int] = {}
    for recipients in recipients_of:
        for user_id in recipients:
            counts[user_id] = counts.get(user_id, 0) + 1
    return counts


def spread_seqs(
    recipients_of: Sequence[Sequence[int]],
    last_seqs: Mapping[int, int],
    counts: Mapping[int, int],
) -> list[dict[int, int]]:
    """Hand out the numbers a batch took (up to ``last_seqs``) in batch order: for each
    message, recipient -> its sequence number."""
    next_seq = {user_id: last_seqs[user_id] - counts[user_id] + 1 for user_id in last_seqs}
    seqs_of: list[dict[int, int]] = []
    for recipients in recipients_of:
        seqs: dict[int, int] = {}
        for user_id in recipients:
            seqs[user_id] = next_seq[user_id]
            next_seq[user_id] += 1
        seqs_of.append(seqs)
    return seqs_of
