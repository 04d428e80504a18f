"""The history data set: a fast bulk loader and an in-process page-read probe.

Runs inside the benchmarked server's environment (its DATABASE_URL) as a subprocess:
``python -m bench.history_db load|probe ...``; prints one JSON line. On PostgreSQL the
messages are streamed with ``COPY`` (about 10x faster than INSERTs); on SQLite with
batched ``executemany`` in large transactions. Rows go straight into the message store's
table (``chat.store.models.StoredMessageRecord``): history reads need nothing else, and
sync queues stay consistent because these messages are simply older than any event.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import django

BATCH = 50_000
# Message ids are snowflakes (chat.ids): the loaded ones use worker number 1023 and lie in
# the past, one every 100 ms, so they never collide with ids the server makes now.
LOADER_WORKER_ID = 1023
SPACING_MS = 100


Row = tuple[int, int, int, str, str, datetime]


def _rows(count: int, conversation_id: int, sender_id: int) -> Iterator[Row]:
    from chat.ids import EPOCH_MS, TIMESTAMP_SHIFT, WORKER_ID_SHIFT

    start_ms = int(time.time() * 1000) - (count + 1000) * SPACING_MS
    for index in range(count):
        at_ms = start_ms + index * SPACING_MS
        message_id = ((at_ms - EPOCH_MS) << TIMESTAMP_SHIFT) | (LOADER_WORKER_ID << WORKER_ID_SHIFT)
        created = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
        yield (
            message_id,
            conversation_id,
            sender_id,
            f"h{index}",
            f"history message {index} with some ordinary text in it",
            created,
        )


def load(count: int, conversation_id: int, sender_id: int) -> dict[str, object]:
    from django.db import connection, transaction

    from chat.models import Conversation
    from chat.store.models import StoredMessageRecord

    table = StoredMessageRecord._meta.db_table
    columns = "id, conversation_id, sender_id, client_msg_id, text, created_at"
    started = time.monotonic()
    first_id = last_id = 0
    rows = _rows(count, conversation_id, sender_id)
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        raw = connection.connection
        if raw is None:
            raise RuntimeError("no database connection")
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                last_id = row[0]
                first_id = first_id or last_id
        raw.commit()
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
    else:
        placeholders = ", ".join(["%s"] * 6)
        # Table and column names come from the model, not from input.
        insert = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                first_id = first_id or batch[0][0]
                last_id = batch[-1][0]
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.executemany(insert, batch)
                batch = []
        if batch:
            first_id = first_id or batch[0][0]
            last_id = batch[-1][0]
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(insert, batch)
    Conversation.objects.filter(pk=conversation_id).update(last_message_id=last_id)
    seconds = time.monotonic() - started
    return {
        "count": count,
        "seconds": seconds,
        "rows_per_s": count / max(seconds, 1e-9),
        "first_id": first_id,
        "last_id": last_id,
    }


def probe(conversation_id: int, first_id: int, last_id: int, reads: int) -> dict[str, object]:
    """Time the store's 50-message page read (what the REST view runs), in process."""
    from chat.store import get_message_store

    store = get_message_store()
    generator = random.Random(7)
    store.page_conversation(conversation_id, limit=50)  # connect and warm up
    results: dict[str, list[float]] = {"newest": [], "random": []}
    for position, timings in results.items():
        for _ in range(reads):
            before = generator.randint(first_id, last_id) if position == "random" else None
            started = time.perf_counter()
            page = store.page_conversation(conversation_id, before=before, limit=50)
            timings.append((time.perf_counter() - started) * 1000)
            if not page and before is None:
                raise RuntimeError("the loaded conversation has no messages")
    return dict(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["load", "probe"])
    parser.add_argument("--conversation", type=int, required=True)
    parser.add_argument("--sender", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--first-id", type=int, default=0)
    parser.add_argument("--last-id", type=int, default=0)
    parser.add_argument("--reads", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.server_settings")
    django.setup()
    if args.command == "load":
        output = load(args.count, args.conversation, args.sender)
    else:
        output = probe(args.conversation, args.first_id, args.last_id, args.reads)
    print(json.dumps(output))


if __name__ == "__main__":
    main()
