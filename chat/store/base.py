"""The message store contract.

The message store keeps what the seed design puts in a key-value store: every message
(keyed by conversation and message id, so history can later be split across databases by
conversation) and every user's *sync queue*, the per-user, gap-free sequence of events a
device replays to catch up. Conversations and memberships are relational data and live
in the ``chat`` models, not here.

A backend is chosen by ``settings.MESSAGE_STORE = {"BACKEND": "dotted.Path", "OPTIONS": {}}``
and must pass ``tests/store/test_conformance.py``. The contract:

* Message ids are assigned by the caller (``chat.ids``): 64-bit, time-sortable, unique.
  The store never invents them. Order within a conversation is the caller's too: the send
  service takes ids under the conversation's row lock, above its ``last_message_id``, so
  ids increase in commit order; the store keeps each user's entries in put order (seqs are
  taken in the same transaction), so every member's queue lists a conversation's messages
  in id order and ``page_conversation(after=...)`` never misses a later commit.
* ``put_message`` is atomic: the message and one sync entry per recipient are all stored,
  or none is. ``(sender_id, client_msg_id)`` is unique: putting it again stores nothing and
  returns the original message with ``created=False`` and the sender's original sequence
  number, so a client retry is acknowledged with the same id and seq.
* ``put_messages`` is ``put_message`` for several messages at once (group commit), in
  the given order, all or none. A backend may refuse a batch in which a message is a
  retry of an already stored one by raising ``BatchHasRetry`` before anything is kept;
  the caller then puts the messages one by one.
* Sequence numbers: per user, start at 1, increase by exactly 1 per entry, never reused,
  never skipped (a failed put leaves no gap). Concurrent puts touching the same users
  must not deadlock and must not produce duplicate sequence numbers.
* ``append_events`` stores non-message events (edits, deletes, membership changes, read
  markers) in the same per-user sequences, with the same guarantees.
* Edits and deletes change the stored message in place (delete = tombstone: text becomes
  empty, ``deleted_at`` set; the id stays so history and sync show where it was) and
  append the matching event to each given recipient's queue, atomically.
* ``lock_message`` reads one message and holds it locked until the caller's transaction
  ends: concurrent ``lock_message`` calls for one message wait for each other.
* ``page_conversation``: with ``before`` (or neither), the newest ``limit`` messages with
  ``id < before``, newest first; with ``after``, the oldest ``limit`` messages with
  ``id > after``, newest first. Tombstones are included.
* ``read_sync`` returns a user's entries with ``seq > after_seq`` in ascending order.
* ``prune_sync`` deletes up to ``limit`` entries created before ``older_than``, oldest
  first, and returns how many it deleted (sync queues are kept for a window,
  ``SYNC_RETENTION_DAYS``; messages forever). ``last_seq`` never moves back and the next
  entry still takes ``last_seq + 1``; ``read_sync`` returns the entries that remain, so
  after a pruned range its first entry's seq is above ``after_seq + 1``: that is how a
  reader sees that a cursor is older than the window.
* Text is stored exactly: any Unicode, including 4-byte characters, up to the caller's limit.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EventKind:
    """Kinds of sync-queue entries. The wire frame types in docs/protocol.md match these."""

    MESSAGE = "message.new"
    EDITED = "message.edited"
    DELETED = "message.deleted"
    MEMBER_ADDED = "member.added"
    MEMBER_REMOVED = "member.removed"
    CONVERSATION_UPDATED = "conversation.updated"
    READ = "read"  # the user's own read position moved (from another device)


@dataclass(frozen=True, slots=True)
class _SentMessage:
    """What a message has from the moment it is sent (the two kinds below share it)."""

    id: int
    conversation_id: int
    sender_id: int
    client_msg_id: str
    text: str
    created_at: datetime

    def sent_fields(self) -> tuple[int, int, int, str, str, datetime]:
        """The fields above, in their order (a stored message's first columns)."""
        return (
            self.id,
            self.conversation_id,
            self.sender_id,
            self.client_msg_id,
            self.text,
            self.created_at,
        )


@dataclass(frozen=True, slots=True)
class NewMessage(_SentMessage):
    """A message to store, as the sender sent it."""


@dataclass(frozen=True, slots=True)
class StoredMessage(_SentMessage):
    """A message as stored: as sent, then perhaps edited or tombstoned."""

    edited_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, slots=True)
class PutResult:
    message: StoredMessage
    created: bool
    # recipient user id -> sequence number of the new entry. When created is False, only
    # the sender's original entry: {sender_id: seq}.
    seqs: Mapping[int, int]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A non-message event for one user's sync queue."""

    user_id: int
    kind: str
    conversation_id: int
    message_id: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SyncEntry:
    user_id: int
    seq: int
    kind: str
    conversation_id: int
    message_id: int | None
    payload: Mapping[str, Any]
    created_at: datetime


class MessageNotFound(LookupError):
    pass


class BatchHasRetry(Exception):
    """A batch contained a message already stored (a client retry); nothing was kept."""


class MessageStore(abc.ABC):
    """Interface every message store backend implements. See the module docstring."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def put_message(self, message: NewMessage, *, recipient_ids: Iterable[int]) -> PutResult:
        """Store ``message`` and append a ``message.new`` entry to each recipient's queue."""

    def put_messages(self, batch: Sequence[tuple[NewMessage, Sequence[int]]]) -> list[PutResult]:
        """Store several ``(message, recipient_ids)`` pairs; see the module docstring."""
        return [
            self.put_message(message, recipient_ids=recipients) for message, recipients in batch
        ]

    @abc.abstractmethod
    def append_events(self, events: Sequence[NewEvent]) -> dict[int, int]:
        """Append events (at most one per user per call); return user id -> assigned seq."""

    @abc.abstractmethod
    def edit_message(
        self, message_id: int, *, text: str, edited_at: datetime, recipient_ids: Iterable[int]
    ) -> tuple[StoredMessage, dict[int, int]]:
        """Replace the text, set ``edited_at``; append ``message.edited`` to each recipient."""

    @abc.abstractmethod
    def tombstone_message(
        self, message_id: int, *, deleted_at: datetime, recipient_ids: Iterable[int]
    ) -> tuple[StoredMessage, dict[int, int]]:
        """Empty the text, set ``deleted_at``; append ``message.deleted`` to each recipient."""

    @abc.abstractmethod
    def lock_message(self, message_id: int) -> StoredMessage | None:
        """The message, locked until the caller's transaction ends (None if unknown).

        Called inside ``transaction.atomic()``: an edit or delete that checks what it read
        and then changes the message cannot be overtaken by another change in between."""

    @abc.abstractmethod
    def get_messages(self, message_ids: Iterable[int]) -> dict[int, StoredMessage]:
        """Messages by id; unknown ids are absent from the result."""

    def page_conversation(
        self,
        conversation_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        """One page of a conversation's history, newest first (see the contract)."""
        if limit <= 0:
            return []
        if after is None:
            return self._newest_before(conversation_id, before=before, limit=limit)
        # The oldest `limit` after the cursor, returned newest first like every page.
        oldest_first = self._oldest_after(conversation_id, after=after, before=before, limit=limit)
        return oldest_first[::-1]

    @abc.abstractmethod
    def _newest_before(
        self, conversation_id: int, *, before: int | None, limit: int
    ) -> list[StoredMessage]:
        """At most ``limit`` (> 0) messages with ``id < before`` (any id if None), newest
        first: ``page_conversation`` without ``after``."""

    @abc.abstractmethod
    def _oldest_after(
        self, conversation_id: int, *, after: int, before: int | None, limit: int
    ) -> list[StoredMessage]:
        """At most ``limit`` (> 0) messages with ``after < id`` (and ``id < before`` unless
        None), oldest first."""

    @abc.abstractmethod
    def count_messages(
        self, conversation_id: int, *, after_id: int, not_from: int | None = None
    ) -> int:
        """How many messages (tombstones excluded) have ``id > after_id``, optionally
        not sent by ``not_from``."""

    def last_seqs(self, user_ids: Iterable[int]) -> dict[int, int]:
        """``last_seq`` of several users (0 for those with no entry yet)."""
        return {user_id: self.last_seq(user_id) for user_id in set(user_ids)}

    def newest_message_ids(self, user_id: int, *, after_seq: int, upto_seq: int) -> dict[int, int]:
        """Conversation id -> highest message id among the user's ``message.new`` entries
        with ``after_seq < seq <= upto_seq`` (what a device acknowledging that range got)."""
        newest: dict[int, int] = {}
        after = after_seq
        while after < upto_seq:
            entries = self.read_sync(user_id, after_seq=after, limit=min(upto_seq - after, 1000))
            if not entries:
                break
            for entry in entries:
                if entry.seq > upto_seq:
                    break
                if entry.kind == EventKind.MESSAGE and entry.message_id is not None:
                    conversation = entry.conversation_id
                    newest[conversation] = max(newest.get(conversation, 0), entry.message_id)
            after = entries[-1].seq
        return newest

    def newest_message_ids_many(
        self, ranges: Sequence[tuple[int, int, int]]
    ) -> dict[tuple[int, int], int]:
        """``newest_message_ids`` for several ``(user_id, after_seq, upto_seq)`` ranges:
        (user id, conversation id) -> highest message id."""
        newest: dict[tuple[int, int], int] = {}
        for user_id, after_seq, upto_seq in ranges:
            found = self.newest_message_ids(user_id, after_seq=after_seq, upto_seq=upto_seq)
            for conversation_id, message_id in found.items():
                key = (user_id, conversation_id)
                newest[key] = max(newest.get(key, 0), message_id)
        return newest

    @abc.abstractmethod
    def read_sync(self, user_id: int, *, after_seq: int, limit: int) -> list[SyncEntry]:
        """The user's sync entries with ``seq > after_seq``, ascending, at most ``limit``."""

    @abc.abstractmethod
    def last_seq(self, user_id: int) -> int:
        """The user's highest assigned sequence number (0 if none)."""

    @abc.abstractmethod
    def prune_sync(self, *, older_than: datetime, limit: int) -> int:
        """Delete up to ``limit`` sync entries created before ``older_than``, oldest first;
        return how many were deleted."""
