"""Sending, editing and deleting messages: the seed's send flow.

``send_message`` is the only way a message is written (the WebSocket consumer and the
REST view both call it):

1. validate (member of the conversation, 1..MAX_MESSAGE_LENGTH characters, not blank,
   per-user rate limit);
2. in one transaction: lock the conversation's row, take a 64-bit time-sortable id above
   its ``last_message_id`` from the id generator (in memory, no central round trip), so
   ids in a conversation increase in commit order; store the message and append one
   entry to every member's sync queue (the sender's too, for their other devices);
3. after commit: acknowledge to the sending device and publish the event once, routed
   to the processes holding the members' connections.

The database and Redis round trips are the same for a group of 2 and of 100 (asserted in
tests/chat/test_send_cost.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from chat import frames, hooks, ids, ratelimit, realtime
from chat.models import Conversation, Membership
from chat.store import get_message_store
from chat.store.base import (
    BatchHasRetry,
    MessageNotFound,
    NewMessage,
    PutResult,
    StoredMessage,
)
from chatproject import sql
from chatproject.errors import Forbidden, NotFound, ServiceError
from chatproject.limits import HISTORY_PAGE_MAX, MAX_CLIENT_MSG_ID_LENGTH
from chatproject.text import is_blank, unstorable_text_problem

from .conversations import UnknownConversation, access_conversation, member_ids, member_ids_of

logger = logging.getLogger(__name__)


class InvalidText(ServiceError):
    code = "invalid_text"


class TextTooLong(ServiceError):
    code = "text_too_long"
    status = 413


@dataclass(frozen=True, slots=True)
class SendResult:
    message: StoredMessage
    seq: int  # the sender's sequence number for this message
    duplicate: bool  # an earlier send with the same client_msg_id was acknowledged instead


def validate_text(text: str) -> str:
    if len(text) > settings.MAX_MESSAGE_LENGTH:
        raise TextTooLong(
            f"A message has at most {settings.MAX_MESSAGE_LENGTH:,} characters; "
            f"this one has {len(text):,}.",
            fields={"text": [f"At most {settings.MAX_MESSAGE_LENGTH} characters."]},
        )
    if problem := unstorable_text_problem(text):
        raise InvalidText(f"A message cannot be stored: {problem}", fields={"text": [problem]})
    if is_blank(text):
        # Only whitespace or invisible characters (zero-width space, joiners, BOM, ...).
        raise InvalidText(
            "A message cannot be empty.", fields={"text": ["This field may not be blank."]}
        )
    return text


@dataclass(frozen=True, slots=True)
class SendRequest:
    sender_id: int
    conversation_id: int
    client_msg_id: str
    text: str
    device_id: int | None = None  # the sending device: skipped by the live fan-out


def send_message(
    *,
    sender_id: int,
    conversation_id: int,
    client_msg_id: str,
    text: str,
    device_id: int | None = None,
) -> SendResult:
    outcome = send_messages(
        [SendRequest(sender_id, conversation_id, client_msg_id, text, device_id)]
    )[0]
    if isinstance(outcome, ServiceError):
        raise outcome
    return outcome


def send_messages(requests: Sequence[SendRequest]) -> list[SendResult | ServiceError]:
    """Send several messages (from any senders, to any conversations) at once.

    Each request succeeds or fails on its own (the error is returned in its place), but the
    accepted ones are written in one transaction (group commit: the statements and round
    trips of one send, whatever the batch size) and published in one round trip.
    """
    outcomes: list[SendResult | ServiceError | None] = [None] * len(requests)
    members_of = member_ids_of(r.conversation_id for r in requests)
    checked: list[int] = []
    for index, request in enumerate(requests):
        try:
            _check_request(request, members_of.get(request.conversation_id, ()))
        except ServiceError as error:
            outcomes[index] = error
            continue
        checked.append(index)
    refusals = ratelimit.hit_many(
        "send",
        [requests[i].sender_id for i in checked],
        limit=settings.SEND_RATE_LIMIT_PER_10S,
        window_seconds=10,
    )
    batch: list[_Accepted] = []
    for index, refusal in zip(checked, refusals, strict=True):
        if refusal is not None:
            outcomes[index] = refusal
            continue
        request = requests[index]
        batch.append(_Accepted(index, request, members_of[request.conversation_id]))
    if batch:
        try:
            stored: list[PutResult | ServiceError] = list(_store(batch))
        except (BatchHasRetry, DataError, IntegrityError):
            # A client retry in the batch, or one message the database refuses: put them
            # one by one, so the others are stored and only that one fails.
            stored = [_store_alone(accepted) for accepted in batch]
        for accepted, result in zip(batch, stored, strict=True):
            outcomes[accepted.index] = (
                result
                if isinstance(result, ServiceError)
                else SendResult(
                    message=result.message,
                    seq=result.seqs[accepted.request.sender_id],
                    duplicate=not result.created,
                )
            )
    finished: list[SendResult | ServiceError] = []
    for outcome in outcomes:
        if outcome is None:  # every request ends in exactly one branch above
            raise RuntimeError("send_messages left a request without an outcome")
        finished.append(outcome)
    return finished


@dataclass(frozen=True, slots=True)
class _Accepted:
    index: int  # position in the caller's requests
    request: SendRequest
    members: list[int]


def _check_request(request: SendRequest, members: Sequence[int]) -> None:
    validate_text(request.text)
    if not request.client_msg_id or len(request.client_msg_id) > MAX_CLIENT_MSG_ID_LENGTH:
        raise ServiceError(
            f"client_msg_id must be 1 to {MAX_CLIENT_MSG_ID_LENGTH} characters.",
            code="invalid_client_msg_id",
        )
    if problem := unstorable_text_problem(request.client_msg_id):
        raise ServiceError(
            f"client_msg_id: {problem}",
            code="invalid_client_msg_id",
            fields={"client_msg_id": [problem]},
        )
    if request.sender_id not in members:
        raise UnknownConversation("No such conversation, or you are not a member.")


def _store_alone(accepted: _Accepted) -> PutResult | ServiceError:
    try:
        return _store([accepted])[0]
    except (DataError, IntegrityError):
        logger.exception(
            "send: the database refused %s's message %r",
            accepted.request.sender_id,
            accepted.request.client_msg_id,
        )
        return ServiceError("This message could not be stored.", code="server_error", status=500)


def _store(batch: Sequence[_Accepted]) -> list[PutResult]:
    """Lock the conversations, give the messages their ids, store them, count them in their
    conversations, publish after commit.

    Ids are taken under the conversations' row locks and above their ``last_message_id``,
    so within a conversation ids increase in commit order: whoever holds the lock commits
    before the next sender can read the floor. Every member's sequence numbers are taken
    under the same lock, so their streams list a conversation's messages in id order, and a
    reader of ``page_conversation(after=newest id seen)`` can never miss one committed later.
    """
    with transaction.atomic(), _pipelined():
        floors = _lock_conversations({accepted.request.conversation_id for accepted in batch})
        now = timezone.now()
        messages: list[tuple[NewMessage, Sequence[int]]] = []
        for accepted in batch:
            request = accepted.request
            message_id = ids.next_id_after(floors.get(request.conversation_id, 0))
            floors[request.conversation_id] = message_id
            message = NewMessage(
                id=message_id,
                conversation_id=request.conversation_id,
                sender_id=request.sender_id,
                client_msg_id=request.client_msg_id,
                text=request.text,
                created_at=now,
            )
            messages.append((message, accepted.members))
        results = get_message_store().put_messages(messages)
        new = [
            (accepted, result)
            for accepted, result in zip(batch, results, strict=True)
            if result.created
        ]
        if new:
            _count_new_messages([(result.message, accepted.members) for accepted, result in new])
            transaction.on_commit(lambda: _publish_new(new))
    return results


@contextmanager
def _pipelined() -> Iterator[None]:
    """On PostgreSQL, the statements of a send batch go out in psycopg's pipeline mode: a
    statement whose result is not read (the sync entries, the counters) is sent with the
    next one that is (here: with the end of the block), so a batch costs 5 round trips
    instead of 8. Each round trip in a worker thread also waits for the GIL behind the
    event loop. COMMIT and the on-commit publish run after the block, outside the
    pipeline: ORM code that reads a row count must not run in it."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.connection.pipeline():
        yield


def _lock_conversations(conversation_ids: set[int]) -> dict[int, int]:
    """Lock the conversations' rows until commit (one statement) and return each one's
    ``last_message_id``: the floor of the ids sent into it now."""
    table = Conversation._meta.db_table
    ordered = sorted(conversation_ids)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Ascending ids: concurrent batches lock shared conversations in the same order,
            # so they cannot deadlock.
            cursor.execute(
                f"SELECT id, last_message_id FROM {table} WHERE id = ANY(%s::bigint[]) "  # noqa: S608 (constant table name)
                "ORDER BY id FOR UPDATE",
                [sql.int_array(ordered)],
            )
        else:
            # SQLite locks the whole database for a write. A no-op UPDATE as the first
            # statement takes that lock (waiting for other writers) before the floor is read,
            # whatever the transaction mode: a plain SELECT in a deferred transaction would
            # read a floor another writer is about to move.
            cursor.execute(
                f"UPDATE {table} SET last_message_id = last_message_id "  # noqa: S608 (constant table name)
                f"WHERE id IN ({', '.join(['%s'] * len(ordered))}) RETURNING id, last_message_id",
                ordered,
            )
        return dict(cursor.fetchall())


def _count_new_messages(messages: Sequence[tuple[StoredMessage, Sequence[int]]]) -> None:
    """Move each conversation's last message and its members' unread counts: two statements
    for the whole batch, whatever the group sizes."""
    last_id: dict[int, int] = {}
    total: dict[int, int] = {}
    own: dict[tuple[int, int], int] = {}  # (conversation, sender) -> messages they sent
    for message, _members in messages:
        conversation_id = message.conversation_id
        last_id[conversation_id] = max(last_id.get(conversation_id, 0), message.id)
        total[conversation_id] = total.get(conversation_id, 0) + 1
        key = (conversation_id, message.sender_id)
        own[key] = own.get(key, 0) + 1
    conversations = Conversation._meta.db_table
    memberships = Membership._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Arrays keep the statement text constant whatever the batch (psycopg caches it).
            last = "SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS v(column1, column2)"
            own_rows = (
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) "
                "AS s(column1, column2, column3)"
            )
            last_params: list[Any] = [sql.int_array(last_id), sql.int_array(last_id.values())]
            own_params: list[Any] = [
                sql.int_array(c for c, _ in own),
                sql.int_array(u for _, u in own),
                sql.int_array(own.values()),
            ]
            total_params: list[Any] = [sql.int_array(total), sql.int_array(total.values())]
            totals = "SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS v(column1, column2)"
        else:
            last = f"VALUES {_placeholders(len(last_id), 2)}"
            own_rows = f"VALUES {_placeholders(len(own), 3)}"
            totals = f"VALUES {_placeholders(len(total), 2)}"
            last_params = [value for item in last_id.items() for value in item]
            own_params = [value for key, count in own.items() for value in (*key, count)]
            total_params = [value for item in total.items() for value in item]
        cursor.execute(
            f"UPDATE {conversations} SET last_message_id = v.column2 FROM ({last}) AS v "  # noqa: S608 (constant fragments)
            f"WHERE {conversations}.id = v.column1 AND {conversations}.last_message_id < v.column2",
            last_params,
        )
        # Every member gets the conversation's new messages as unread, minus their own.
        cursor.execute(
            f"UPDATE {memberships} SET unread_count = unread_count + v.column2 - COALESCE(("  # noqa: S608 (constant fragments)
            f"SELECT s.column3 FROM ({own_rows}) AS s "
            f"WHERE s.column1 = {memberships}.conversation_id AND s.column2 = {memberships}.user_id"
            f"), 0) FROM ({totals}) AS v WHERE {memberships}.conversation_id = v.column1",
            own_params + total_params,
        )


def _placeholders(rows: int, columns: int) -> str:
    row = "(" + ", ".join(["%s"] * columns) + ")"
    return ", ".join([row] * rows)


def _publish_new(new: Sequence[tuple[_Accepted, PutResult]]) -> None:
    offline_lists = realtime.publish_many(
        [
            realtime.Outgoing(
                accepted.members,
                frames.message_new(result.message, full=False),
                seqs=result.seqs,
                skip_device_id=accepted.request.device_id,
            )
            for accepted, result in new
        ]
    )
    # Recipients with no live connection anywhere get a push (notifications subscribes:
    # one enqueue for the batch).
    hooks.publish(
        hooks.MessagesStored(
            [
                hooks.StoredDelivery(result.message, result.seqs, offline)
                for (_, result), offline in zip(new, offline_lists, strict=True)
            ]
        )
    )


def _access_own_message(user_id: int, message_id: int) -> StoredMessage:
    """The user's own live message, locked until the caller's transaction ends, so that the
    change decided on it is made to exactly what was checked (a concurrent edit or delete
    waits, then sees this one's result)."""
    message = get_message_store().lock_message(message_id)
    if message is None:
        raise _unknown_message()
    try:
        access_conversation(user_id, message.conversation_id)
    except UnknownConversation:  # outsiders cannot tell a real message id from a made-up one
        raise _unknown_message() from None
    if message.sender_id != user_id:
        raise Forbidden("You can only change your own messages.", code="not_your_message")
    if message.is_deleted:
        raise ServiceError("That message was deleted.", code="message_deleted", status=409)
    return message


def _unknown_message() -> NotFound:
    return NotFound("No such message.", code="unknown_message")


def edit_message(*, user_id: int, message_id: int, text: str) -> StoredMessage:
    validate_text(text)
    with transaction.atomic():
        message = _access_own_message(user_id, message_id)
        members = member_ids(message.conversation_id)
        try:
            edited, seqs = get_message_store().edit_message(
                message.id, text=text, edited_at=timezone.now(), recipient_ids=members
            )
        except MessageNotFound:  # gone despite the lock (e.g. removed by another backend)
            raise _unknown_message() from None
        frame = frames.message_edited(edited, full=False)
        transaction.on_commit(lambda: realtime.publish(members, frame, seqs=seqs))
    return edited


def delete_message(*, user_id: int | None, message_id: int) -> StoredMessage:
    """Delete (tombstone) a message: its sender's own, or any with ``user_id=None``
    (moderation from the admin)."""
    with transaction.atomic():
        if user_id is None:
            message = get_message_store().lock_message(message_id)
            if message is None:
                raise _unknown_message()
            if message.is_deleted:
                return message
        else:
            message = _access_own_message(user_id, message_id)
        members = member_ids(message.conversation_id)
        try:
            deleted, seqs = get_message_store().tombstone_message(
                message.id, deleted_at=timezone.now(), recipient_ids=members
            )
        except MessageNotFound:
            raise _unknown_message() from None
        # A deleted message no longer counts as unread for those who had not read it.
        Membership.objects.filter(
            conversation_id=message.conversation_id, last_read_id__lt=message.id, unread_count__gt=0
        ).exclude(user_id=message.sender_id).update(unread_count=F("unread_count") - 1)
        frame = frames.message_deleted(deleted)
        transaction.on_commit(lambda: realtime.publish(members, frame, seqs=seqs))
    return deleted


def fetch_messages(user_id: int, message_ids: list[int]) -> list[StoredMessage]:
    """Full bodies of messages in conversations the user belongs to (others are left out)."""
    found = get_message_store().get_messages(message_ids)
    conversations = {m.conversation_id for m in found.values()}
    allowed = set(
        Membership.objects.filter(user_id=user_id, conversation_id__in=conversations).values_list(
            "conversation_id", flat=True
        )
    )
    return [found[i] for i in message_ids if i in found and found[i].conversation_id in allowed]


def history_page(
    user_id: int, conversation_id: int, *, before: int | None, after: int | None, limit: int
) -> list[StoredMessage]:
    access_conversation(user_id, conversation_id)
    return get_message_store().page_conversation(
        conversation_id, before=before, after=after, limit=min(limit, HISTORY_PAGE_MAX)
    )
