"""Per-device sync and read state.

Every event that changes what a user sees is in that user's sync queue with a gap-free
sequence number. A device keeps a cursor (the last seq it processed) and, on (re)connect,
pages through everything after it; read markers travel the same way to the user's other
devices. Receipts (delivered/read) for other members are live-only: a client that was away
reloads them with the conversation (REST).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from chat import frames, hooks, realtime
from chat.models import Conversation, ConversationKind, DeviceSyncState, Membership
from chat.store import get_message_store
from chat.store.base import EventKind, NewEvent, SyncEntry

from .conversations import access_conversation, member_ids, member_ids_of

MESSAGE_EVENTS = (EventKind.MESSAGE, EventKind.EDITED, EventKind.DELETED)


@dataclass(frozen=True, slots=True)
class SyncPage:
    events: list[frames.SyncEvent]
    last_seq: int  # the seq of the last event in this page (or the cursor, if empty)
    has_more: bool
    # The cursor is older than the retained window (SYNC_RETENTION_DAYS): events after it
    # were pruned. No events; last_seq is the user's newest seq, from which the device
    # continues once it has reloaded its state over REST (docs/protocol.md).
    reset: bool = False


def render_events(entries: list[SyncEntry]) -> list[frames.SyncEvent]:
    """Sync entries as the frames a live device would have received (the same builders in
    chat.frames), seq first. Message events show the message as it is now (an edited or
    deleted message shows its current state), in full."""
    store = get_message_store()
    wanted = [
        e.message_id for e in entries if e.kind in MESSAGE_EVENTS and e.message_id is not None
    ]
    messages = store.get_messages(wanted) if wanted else {}
    events: list[frames.SyncEvent] = []
    for entry in entries:
        frame: frames.MessageFrame | frames.StoredEventFrame
        if entry.kind in MESSAGE_EVENTS:
            message = messages.get(entry.message_id or 0)
            if message is None:
                continue
            frame = frames.message_event(entry.kind, message)
        else:
            frame = frames.stored_event(entry.kind, entry.payload)
        events.append(frames.sync_event(entry.seq, frame))
    return events


def sync_page(user_id: int, *, after_seq: int, limit: int) -> SyncPage:
    """The events after ``after_seq``. A cursor beyond the user's newest seq is taken as that
    seq: the page's ``last_seq`` becomes the device's live cursor, and one past the queue
    would make it skip the events still to come. A cursor whose next events were pruned
    gets a ``reset`` page instead."""
    store = get_message_store()
    entries = store.read_sync(user_id, after_seq=after_seq, limit=limit + 1)
    # Queues are gap-free (base.py): a first entry past after_seq + 1 means the ones
    # between were pruned.
    pruned = bool(entries) and entries[0].seq > after_seq + 1
    if not entries:
        # Read after the empty page, so events appended meanwhile are at or below it: the
        # page is read again from there rather than answered empty.
        newest = store.last_seq(user_id)
        if after_seq > newest:
            return sync_page(user_id, after_seq=newest, limit=limit)
        if after_seq < newest:
            # Events after the cursor were committed before `newest` was read: this read
            # sees each of them that was not pruned.
            entries = store.read_sync(user_id, after_seq=after_seq, limit=limit + 1)
            pruned = not entries or entries[0].seq > after_seq + 1
    if pruned:
        return SyncPage(events=[], last_seq=store.last_seq(user_id), has_more=False, reset=True)
    has_more = len(entries) > limit
    entries = entries[:limit]
    last_seq = entries[-1].seq if entries else after_seq
    return SyncPage(events=render_events(entries), last_seq=last_seq, has_more=has_more)


def hello_states(devices: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """For each (user id, device id): the user's last seq and the device's delivered
    cursor, what ``hello`` tells a connecting device; two queries for any number."""
    last = get_message_store().last_seqs(user_id for user_id, _ in devices)
    delivered = dict(
        DeviceSyncState.objects.filter(device_id__in={d for _, d in devices}).values_list(
            "device_id", "delivered_seq"
        )
    )
    return [(last[user_id], delivered.get(device_id, 0)) for user_id, device_id in devices]


@dataclass(frozen=True, slots=True)
class Ack:
    """A device confirms it processed its queue up to ``seq`` (its last stored cursor was
    ``previous_seq``)."""

    user_id: int
    device_id: int
    seq: int
    previous_seq: int


def acknowledge_many(acks: list[Ack]) -> list[None]:
    """Devices confirm they processed everything up to their ``seq``: keep each cursor
    server-side and tell 1:1 senders their messages were delivered. Many devices' acks in a
    fixed number of statements (the WebSocket consumers coalesce their ack flushes here)."""
    moving = [ack for ack in acks if ack.seq > ack.previous_seq]
    if moving:
        store = get_message_store()
        last = store.last_seqs(ack.user_id for ack in moving)
        cursors: dict[int, int] = {}
        ranges: list[tuple[int, int, int]] = []
        for ack in moving:
            seq = min(ack.seq, last[ack.user_id])  # never past what exists
            cursors[ack.device_id] = max(cursors.get(ack.device_id, 0), seq)
            ranges.append((ack.user_id, ack.previous_seq, seq))
        # No enclosing transaction, on purpose: each statement commits on its own, so the
        # membership rows it touches (which every send also updates, for unread counts)
        # are locked only for that statement. Held to a commit, an ack batch's locks stalled
        # the sends behind it (p99 238 ms against 25 ms without acks at 800 msgs/s). Every
        # statement only moves markers forward, so a partial run is simply finished by the
        # next ack.
        _store_cursors(cursors)
        newest = store.newest_message_ids_many(ranges)
        if newest:
            _record_deliveries(newest)
    return [None] * len(acks)


# Delivered markers are moved this many rows per statement (each its own transaction).
DELIVERY_ROWS_PER_STATEMENT = 25


def _store_cursors(cursors: dict[int, int]) -> None:
    """Move each device's delivered cursor forward (never back), creating it if needed."""
    table = DeviceSyncState._meta.db_table
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = ", ".join(["(%s, %s, %s)"] * len(cursors))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (device_id, delivered_seq, updated_at) VALUES {rows} "  # noqa: S608 (constant fragments)
            f"ON CONFLICT (device_id) DO UPDATE SET delivered_seq = "
            f"{greatest}({table}.delivered_seq, excluded.delivered_seq), "
            "updated_at = excluded.updated_at",
            [
                value
                for device_id, seq in sorted(cursors.items())
                for value in (device_id, seq, now)
            ],
        )


def _record_deliveries(newest: dict[tuple[int, int], int]) -> None:
    """Move members' delivered markers in 1:1 conversations and tell the other member."""
    direct = set(
        Conversation.objects.filter(
            pk__in={conversation_id for _, conversation_id in newest},
            kind=ConversationKind.DIRECT,
        ).values_list("pk", flat=True)
    )
    rows = [
        (conversation_id, user_id, message_id)
        for (user_id, conversation_id), message_id in sorted(newest.items())
        if conversation_id in direct
    ]
    if not rows:
        return
    table = Membership._meta.db_table
    moved: list[tuple[int, int, int]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), DELIVERY_ROWS_PER_STATEMENT):
            chunk = rows[start : start + DELIVERY_ROWS_PER_STATEMENT]
            cursor.execute(
                f"UPDATE {table} SET last_delivered_id = v.column3 "  # noqa: S608 (constant fragments)
                f"FROM (VALUES {', '.join(['(%s, %s, %s)'] * len(chunk))}) AS v "
                f"WHERE {table}.conversation_id = v.column1 AND {table}.user_id = v.column2 "
                f"AND {table}.last_delivered_id < v.column3 "
                f"RETURNING {table}.conversation_id, {table}.user_id, {table}.last_delivered_id",
                [value for row in chunk for value in row],
            )
            moved += cursor.fetchall()
    if not moved:
        return
    members = member_ids_of(conversation_id for conversation_id, _, _ in moved)
    receipts = [
        realtime.Outgoing(
            [u for u in members.get(conversation_id, []) if u != user_id],
            frames.receipt_delivered(
                conversation_id=conversation_id, user_id=user_id, delivered_id=message_id
            ),
        )
        for conversation_id, user_id, message_id in moved
    ]
    transaction.on_commit(partial(realtime.publish_many, receipts))


def mark_read(*, user_id: int, conversation_id: int, message_id: int) -> Membership:
    """Move the user's read position forward to ``message_id``; recompute unread; tell all the
    user's devices (a ``read`` event in their sync queue: the reading device gets it too, so
    its stream stays gap-free) and the other members (receipts)."""
    store = get_message_store()
    with transaction.atomic():
        conversation, membership = access_conversation(user_id, conversation_id)
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        message_id = min(message_id, conversation.last_message_id)
        if message_id <= membership.last_read_id:
            return membership
        membership.last_read_id = message_id
        membership.last_delivered_id = max(membership.last_delivered_id, message_id)
        membership.unread_count = store.count_messages(
            conversation_id, after_id=message_id, not_from=user_id
        )
        membership.save(update_fields=["last_read_id", "last_delivered_id", "unread_count"])
        own_frame = frames.read(
            conversation_id=conversation_id,
            last_read_id=message_id,
            unread_count=membership.unread_count,
        )
        seqs = store.append_events(
            [
                NewEvent(
                    user_id=user_id,
                    kind=EventKind.READ,
                    conversation_id=conversation_id,
                    payload=frames.stored_payload(own_frame),
                )
            ]
        )
        others = [u for u in member_ids(conversation_id) if u != user_id]
        receipt = frames.receipt_read(
            conversation_id=conversation_id, user_id=user_id, read_id=message_id
        )
        transaction.on_commit(lambda: realtime.publish([user_id], own_frame, seqs=seqs))
        transaction.on_commit(lambda: realtime.publish(others, receipt))
        # The user's other devices drop this conversation's notification and badge.
        transaction.on_commit(
            partial(
                hooks.publish,
                hooks.ConversationRead(
                    user_id=user_id, conversation_id=conversation_id, last_read_id=message_id
                ),
            )
        )
    return membership
