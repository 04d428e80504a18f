"""Push notifications: the entry points from the chat server, reached through chat's
post-commit hooks (``chat.hooks``, subscribed in :mod:`notifications.subscribers`), all
cheap on the caller's side (at most one task enqueued, never a query):

* :func:`messages_stored`: sends committed; ``chat.realtime.publish_many`` reported which
  recipients have no live connection anywhere. Those (never the sender) are pushed.
* :func:`device_unacked`: a connected device did not acknowledge a delivered event within
  ``PUSH_UNACKED_DELAY`` seconds (the app may be suspended with its socket open).
* :func:`conversation_read`: the user read a conversation; their devices get a silent
  update that removes its notification and sets the badge.

The tasks then apply mute, do-not-disturb and the preview setting, claim each
(registration, message) pair once (``PushDelivery``), and send one task per provider batch.
The jobs live in their own modules: :mod:`.runner` (running tasks), :mod:`.decision` (who is
pushed), :mod:`.sending` (batches and retries), :mod:`.registrations` (REST); the tasks'
arguments are typed in :mod:`.task_payloads`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from chat.store.base import StoredMessage

from .runner import enqueue, wait_for_idle
from .task_payloads import NewMessagePush, NewMessagesPush, ReadPush, TaskPayload, UnackedPush

__all__ = ["conversation_read", "device_unacked", "enqueue", "messages_stored", "wait_for_idle"]

logger = logging.getLogger(__name__)


# --- entry points from the chat server (cheap: one enqueue at most) ---------------------------
def messages_stored(
    stored: Sequence[tuple[StoredMessage, Mapping[int, int], Iterable[int]]],
) -> None:
    """After a batch of sends committed (group commit; a single send is a batch of one):
    push each message's offline recipients, never its sender. Runs in the send's on-commit
    callback, so it does nothing but enqueue: one task for the whole batch, and none at all
    when nobody is offline."""
    batch = []
    for message, seqs, offline_user_ids in stored:
        recipients = sorted(u for u in offline_user_ids if u != message.sender_id and u in seqs)
        if recipients:
            batch.append(NewMessagePush(message.id, message.conversation_id, tuple(recipients)))
    if len(batch) == 1:
        _enqueue_safely(batch[0])
    elif batch:
        _enqueue_safely(NewMessagesPush(tuple(batch)))


def device_unacked(*, user_id: int, device_id: int, acked_seq: int, delivered_seq: int) -> None:
    """A connected device has not acknowledged up to ``delivered_seq`` in time."""
    _enqueue_safely(UnackedPush(user_id, device_id, acked_seq, delivered_seq))


def conversation_read(*, user_id: int, conversation_id: int, last_read_id: int) -> None:
    """The user's read position moved: clear that conversation's notification elsewhere."""
    _enqueue_safely(ReadPush(user_id, conversation_id, last_read_id))


def _enqueue_safely(job: TaskPayload) -> None:
    # Pushes are best effort next to the message itself: a broker outage must not turn a
    # committed send into an error for the sender.
    try:
        enqueue(job)
    except Exception:
        logger.exception("push: could not enqueue %s", job.task_name)
