"""Push notifications: the decision who gets pushed, and the registrations and settings
behind it. The Celery tasks (notifications/tasks.py) only call into this module.

Entry points from the chat server, reached through chat's post-commit hooks
(``chat.hooks``, subscribed in :mod:`notifications.subscribers`), all cheap on the caller's
side (at most one task enqueued, never a query):

* :func:`messages_stored`: sends committed; ``chat.realtime.publish_many`` reported which
  recipients have no live connection anywhere. Those (never the sender) are pushed.
* :func:`device_unacked`: a connected device did not acknowledge a delivered event within
  ``PUSH_UNACKED_DELAY`` seconds (the app may be suspended with its socket open).
* :func:`conversation_read`: the user read a conversation; their devices get a silent
  update that removes its notification and sets the badge.

The tasks then apply mute, do-not-disturb and the preview setting, claim each
(registration, message) pair once (``PushDelivery``), and send one task per provider batch.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import Device, User
from chat.models import Conversation, Membership
from chat.store import get_message_store
from chat.store.base import EventKind, StoredMessage
from chatproject.errors import NotFound

from . import endpoints, payloads, providers
from .models import (
    NotificationSettings,
    PushDelivery,
    PushKind,
    PushRegistration,
    address_digest,
)

if TYPE_CHECKING:
    from celery import Task

logger = logging.getLogger(__name__)

# An unacknowledged device is pushed for at most this many conversations at once.
UNACKED_CONVERSATIONS_LIMIT = 20
UNACKED_SYNC_READ_LIMIT = 500


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
            batch.append([message.id, message.conversation_id, recipients])
    if len(batch) == 1:
        _enqueue_safely("push_new_message", batch[0])
    elif batch:
        _enqueue_safely("push_new_messages", [batch])


def device_unacked(*, user_id: int, device_id: int, acked_seq: int, delivered_seq: int) -> None:
    """A connected device has not acknowledged up to ``delivered_seq`` in time."""
    _enqueue_safely("push_unacked", [user_id, device_id, acked_seq, delivered_seq])


def conversation_read(*, user_id: int, conversation_id: int, last_read_id: int) -> None:
    """The user's read position moved: clear that conversation's notification elsewhere."""
    _enqueue_safely("push_conversation_read", [user_id, conversation_id, last_read_id])


def _enqueue_safely(task_name: str, args: list[Any]) -> None:
    # Pushes are best effort next to the message itself: a broker outage must not turn a
    # committed send into an error for the sender.
    from . import tasks

    try:
        enqueue(getattr(tasks, task_name), args)
    except Exception:
        logger.exception("push: could not enqueue %s", task_name)


# --- running tasks: the broker, or in-process off the request path ----------------------------
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_in_flight = 0
_idle = threading.Condition(_executor_lock)


def enqueue(task: Task[Any, Any], args: list[Any], *, countdown: float = 0.0) -> None:
    """Queue ``task`` with JSON ``args``. With a broker: ``apply_async``. Embedded (eager
    Celery): run it in this process on a small thread pool, so a push never delays the
    send that caused it; a countdown waits on a timer thread."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        task.apply_async(args=tuple(args), countdown=countdown)
        return
    global _in_flight  # noqa: PLW0603 (counted for wait_for_idle)
    with _executor_lock:
        _in_flight += 1
    if countdown > 0:
        timer = threading.Timer(countdown, _submit_local, (task, args))
        timer.daemon = True
        timer.start()
    else:
        _submit_local(task, args)


def _submit_local(task: Task[Any, Any], args: list[Any]) -> None:
    global _executor  # noqa: PLW0603 (created on first use)
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="push")
        executor = _executor
    executor.submit(_run_local, task, args)


def _run_local(task: Task[Any, Any], args: list[Any]) -> None:
    global _in_flight  # noqa: PLW0603
    try:
        task.apply(args=tuple(args), throw=True)
    except Exception:
        logger.exception("push: task %s failed", task.name)
    finally:
        close_old_connections()
        with _executor_lock:
            _in_flight -= 1
            _idle.notify_all()


def wait_for_idle(timeout: float = 10.0) -> bool:
    """Embedded: block until no in-process push task is queued or running (tests)."""
    with _executor_lock:
        return _idle.wait_for(lambda: _in_flight == 0, timeout=timeout)


# --- the decision -----------------------------------------------------------------------------
def _usable_registrations() -> QuerySet[PushRegistration]:
    """Registrations of devices that may still receive anything: a logged-out, revoked or
    expired device must not get message previews."""
    fresh = timezone.now() - timedelta(days=settings.DEVICE_TOKEN_IDLE_DAYS)
    return PushRegistration.objects.filter(
        device__revoked_at__isnull=True, device__last_used_at__gte=fresh, user__is_active=True
    )


@dataclass(frozen=True, slots=True)
class _Candidate:
    registration: PushRegistration
    message: StoredMessage


def push_new_message(
    *, message_id: int, conversation_id: int, user_ids: Sequence[int], claim: str
) -> int:
    """Push a new message to every registered device of ``user_ids`` (the recipients that
    were offline when it was sent). Returns how many pushes were queued."""
    registrations = list(_usable_registrations().filter(user_id__in=user_ids))
    if not registrations:
        return 0
    message = get_message_store().get_messages([message_id]).get(message_id)
    if message is None or message.is_deleted or message.conversation_id != conversation_id:
        return 0
    return _push_messages(registrations, [message], claim=claim)


def push_new_messages(*, batch: Sequence[Sequence[Any]], claim: str) -> int:
    """``push_new_message`` for ``[message_id, conversation_id, user_ids]`` items: one query
    finds out whether any recipient has a registration at all (most batches stop there)."""
    wanted = {user_id for _, _, user_ids in batch for user_id in user_ids}
    registrations = list(_usable_registrations().filter(user_id__in=wanted))
    if not registrations:
        return 0
    found = get_message_store().get_messages(message_id for message_id, _, _ in batch)
    pushed = 0
    for message_id, conversation_id, user_ids in batch:
        message = found.get(message_id)
        if message is None or message.is_deleted or message.conversation_id != conversation_id:
            continue
        recipients = set(user_ids)
        mine = [r for r in registrations if r.user_id in recipients]
        if mine:
            pushed += _push_messages(mine, [message], claim=claim)
    return pushed


def push_unacked(
    *, user_id: int, device_id: int, acked_seq: int, delivered_seq: int, claim: str
) -> int:
    """Push one device for the messages it was sent but did not acknowledge: the newest
    unread one per conversation (the notification of a conversation shows its latest)."""
    registration = _usable_registrations().filter(device_id=device_id, user_id=user_id).first()
    if registration is None or delivered_seq <= acked_seq:
        return 0
    entries = get_message_store().read_sync(
        user_id, after_seq=acked_seq, limit=min(delivered_seq - acked_seq, UNACKED_SYNC_READ_LIMIT)
    )
    newest: dict[int, int] = {}
    for entry in entries:
        if entry.seq <= delivered_seq and entry.kind == EventKind.MESSAGE and entry.message_id:
            newest[entry.conversation_id] = max(
                newest.get(entry.conversation_id, 0), entry.message_id
            )
    if not newest:
        return 0
    wanted = sorted(newest.values())[-UNACKED_CONVERSATIONS_LIMIT:]
    found = get_message_store().get_messages(wanted)
    messages = [found[i] for i in wanted if i in found and not found[i].is_deleted]
    return _push_messages([registration], messages, claim=claim)


def _push_messages(
    registrations: Sequence[PushRegistration], messages: Sequence[StoredMessage], *, claim: str
) -> int:
    user_ids = {r.user_id for r in registrations}
    conversation_ids = {m.conversation_id for m in messages}
    memberships = {
        (m.user_id, m.conversation_id): m
        for m in Membership.objects.filter(
            user_id__in=user_ids, conversation_id__in=conversation_ids
        ).only("user_id", "conversation_id", "muted", "last_read_id")
    }
    preferences = {s.user_id: s for s in NotificationSettings.objects.filter(user_id__in=user_ids)}
    candidates: list[_Candidate] = []
    for registration in registrations:
        preference = preferences.get(registration.user_id)
        if preference is not None and preference.do_not_disturb:
            continue
        for message in messages:
            membership = memberships.get((registration.user_id, message.conversation_id))
            if (
                membership is None  # left the conversation meanwhile
                or membership.muted
                or message.sender_id == registration.user_id  # never your own messages
                or membership.last_read_id >= message.id  # read on another device already
            ):
                continue
            candidates.append(_Candidate(registration, message))
    if not candidates:
        return 0
    deliveries = _claim(candidates, claim=claim)
    if not deliveries:
        return 0
    conversations = {
        c.pk: c for c in Conversation.objects.filter(pk__in=conversation_ids).only("kind", "name")
    }
    senders = {
        u.pk: u.name
        for u in User.objects.filter(pk__in={m.sender_id for m in messages}).only(
            "username", "display_name"
        )
    }
    badges = unread_totals(user_ids)
    items: list[tuple[PushRegistration, int | None, dict[str, Any]]] = []
    for candidate in candidates:
        delivery_id = deliveries.get((candidate.registration.pk, candidate.message.id))
        if delivery_id is None:
            continue  # pushed (or being pushed) by another task already
        message = candidate.message
        conversation = conversations.get(message.conversation_id)
        if conversation is None:
            continue
        preference = preferences.get(candidate.registration.user_id)
        payload = payloads.message_push(
            conversation_id=message.conversation_id,
            conversation_kind=conversation.kind,
            conversation_name=conversation.name,
            sender_id=message.sender_id,
            sender_name=senders.get(message.sender_id, ""),
            message_id=message.id,
            text=message.text,
            show_preview=preference.show_preview if preference is not None else True,
            badge=badges.get(candidate.registration.user_id, 0),
        )
        items.append((candidate.registration, delivery_id, dict(payload)))
    _send_in_batches(items)
    return len(items)


def _claim(candidates: Sequence[_Candidate], *, claim: str) -> dict[tuple[int, int], int]:
    """Insert one PushDelivery per (registration, message); return the ids of the rows this
    claim owns and that are not sent yet. Another task's row (the offline and the
    unacknowledged path, or a duplicate task) stays theirs; a redelivery of this very task
    (same claim, the task id) finds its own rows again and finishes the job."""
    PushDelivery.objects.bulk_create(
        [
            PushDelivery(
                registration=c.registration,
                message_id=c.message.id,
                conversation_id=c.message.conversation_id,
                claim=claim,
            )
            for c in candidates
        ],
        ignore_conflicts=True,
    )
    rows = PushDelivery.objects.filter(
        claim=claim,
        sent_at__isnull=True,
        registration_id__in={c.registration.pk for c in candidates},
        message_id__in={c.message.id for c in candidates},
    ).values_list("pk", "registration_id", "message_id")
    return {(registration_id, message_id): pk for pk, registration_id, message_id in rows}


def push_conversation_read(*, user_id: int, conversation_id: int, last_read_id: int) -> int:
    """Silent update to the user's devices that were pushed something of this conversation
    up to ``last_read_id`` and not cleared since: remove its notification, set the badge to
    the new unread total. Sent whatever the mute and do-not-disturb settings (it only takes
    something away). Devices showing nothing of it get nothing: a silent push costs them
    battery, and browsers may show a "site updated in the background" notice for it."""
    shown = PushDelivery.objects.filter(
        registration__user_id=user_id,
        conversation_id=conversation_id,
        message_id__lte=last_read_id,
        sent_at__isnull=False,
        cleared_at__isnull=True,
    )
    registration_ids = set(shown.values_list("registration_id", flat=True))
    if not registration_ids:
        return 0
    registrations = list(_usable_registrations().filter(pk__in=registration_ids))
    # Marked before sending: a clear that fails for good is not worth a second try at the
    # next read, and two reads racing send one clear each at most.
    shown.update(cleared_at=timezone.now())
    if not registrations:
        return 0
    badge = unread_totals([user_id]).get(user_id, 0)
    payload = dict(
        payloads.clear_push(conversation_id=conversation_id, last_read_id=last_read_id, badge=badge)
    )
    _send_in_batches([(registration, None, payload) for registration in registrations])
    return len(registrations)


def unread_totals(user_ids: Iterable[int]) -> dict[int, int]:
    """The badge: each user's unread messages over all their conversations."""
    rows = (
        Membership.objects.filter(user_id__in=list(user_ids))
        .values("user_id")
        .annotate(total=Sum("unread_count"))
        .values_list("user_id", "total")
    )
    return {user_id: int(total or 0) for user_id, total in rows}


# --- sending ----------------------------------------------------------------------------------
def _send_in_batches(items: Sequence[tuple[PushRegistration, int | None, dict[str, Any]]]) -> None:
    from . import tasks

    by_kind: dict[str, list[list[Any]]] = defaultdict(list)
    for registration, delivery_id, payload in items:
        by_kind[registration.kind].append([registration.pk, delivery_id, payload])
    for kind, batch_items in by_kind.items():
        size = providers.batch_size(kind)
        for start in range(0, len(batch_items), size):
            enqueue(tasks.push_send, [kind, batch_items[start : start + size], 1])


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter; the push service's Retry-After wins when longer."""
    backoff = settings.PUSH_RETRY_BASE_SECONDS * (2 ** (attempt - 1))
    backoff *= 1 + secrets.randbelow(250) / 1000  # up to +25%: retries do not stampede
    delay = max(backoff, retry_after or 0.0)
    return float(min(delay, max(settings.PUSH_RETRY_MAX_SECONDS, retry_after or 0.0)))


def send_batch(*, kind: str, items: Sequence[Sequence[Any]], attempt: int) -> dict[str, int]:
    """Send one provider batch: ``items`` are ``[registration id, delivery id or None,
    payload]``. Marks deliveries sent, removes dead registrations, and queues the
    retryable rest again with a countdown. Returns counts per outcome."""
    registrations = {
        r.pk: r
        for r in _usable_registrations().filter(pk__in={int(i[0]) for i in items}, kind=kind)
    }
    delivery_ids = {int(i[1]) for i in items if i[1] is not None}
    already_sent = set(
        PushDelivery.objects.filter(pk__in=delivery_ids, sent_at__isnull=False).values_list(
            "pk", flat=True
        )
    )
    todo = [
        (registrations[int(i[0])], i[1], i[2])
        for i in items
        if int(i[0]) in registrations and i[1] not in already_sent
    ]
    counts = {outcome.value: 0 for outcome in providers.Outcome}
    if not todo:
        return counts
    results = providers.send(kind, [(registration, payload) for registration, _, payload in todo])
    for result in results:
        counts[result.outcome.value] += 1
    _apply_results(kind, todo, results, attempt=attempt)
    return counts


def _apply_results(
    kind: str,
    todo: Sequence[tuple[PushRegistration, int | None, dict[str, Any]]],
    results: Sequence[providers.Result],
    *,
    attempt: int,
) -> None:
    sent: list[int] = []
    gone = Q(pk__in=[])
    retry: list[list[Any]] = []
    retry_after: float | None = None
    for (registration, delivery_id, payload), result in zip(todo, results, strict=True):
        if result.outcome is providers.Outcome.SENT and delivery_id is not None:
            sent.append(delivery_id)
        elif result.outcome is providers.Outcome.GONE:
            # Only if the address is still the one that failed: the device may have
            # registered a new one meanwhile.
            gone |= Q(pk=registration.pk, address_hash=registration.address_hash)
            logger.info("push: registration %s is gone (%s)", registration.pk, result.detail)
        elif result.outcome is providers.Outcome.UNREACHABLE and attempt > 1:
            logger.warning(
                "push: registration %s unreachable, dropped: %s", registration.pk, result.detail
            )
        elif result.outcome in (providers.Outcome.RETRY, providers.Outcome.UNREACHABLE):
            retry.append([registration.pk, delivery_id, payload])
            if result.retry_after is not None:
                retry_after = max(retry_after or 0.0, result.retry_after)
        elif result.outcome is providers.Outcome.FAILED:
            logger.warning(
                "push: %s push to registration %s refused: %s",
                kind,
                registration.pk,
                result.detail,
            )
    if sent:
        PushDelivery.objects.filter(pk__in=sent).update(sent_at=timezone.now())
    PushRegistration.objects.filter(gone).delete()
    if not retry:
        return
    if attempt >= settings.PUSH_MAX_ATTEMPTS:
        logger.warning("push: %d %s pushes dropped after %d attempts", len(retry), kind, attempt)
        return
    from . import tasks

    delay = retry_delay(attempt, retry_after)
    logger.info("push: %d %s pushes retried in %.1f s", len(retry), kind, delay)
    enqueue(tasks.push_send, [kind, retry, attempt + 1], countdown=delay)


def prune_deliveries() -> int:
    """Forget delivery claims old enough that no retry can still be running for them."""
    cutoff = timezone.now() - timedelta(hours=settings.PUSH_DELIVERY_RETENTION_HOURS)
    deleted, _ = PushDelivery.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- registrations and settings (REST) --------------------------------------------------------
def register(
    device: Device, *, kind: str, address: str, p256dh: str = "", auth: str = ""
) -> PushRegistration:
    """Set this device's push address (replacing its previous one). An address registered
    by another device moves here: it is the same app install or browser, logged in again,
    and must not be pushed twice. A Web Push endpoint must be one the server may contact."""
    if kind == PushKind.WEBPUSH:
        endpoints.check_subscription(address, p256dh=p256dh, auth=auth)
    digest = address_digest(address)
    with transaction.atomic():
        PushRegistration.objects.filter(address_hash=digest).exclude(device=device).delete()
        registration, _ = PushRegistration.objects.update_or_create(
            device=device,
            defaults={
                "user_id": device.user_id,
                "kind": kind,
                "address": address,
                "address_hash": digest,
                "p256dh": p256dh if kind == PushKind.WEBPUSH else "",
                "auth": auth if kind == PushKind.WEBPUSH else "",
            },
        )
    return registration


def registrations_of(user: User) -> QuerySet[PushRegistration]:
    return PushRegistration.objects.filter(user=user, device__revoked_at__isnull=True).order_by(
        "pk"
    )


def unregister(user: User, registration_id: int) -> None:
    deleted, _ = PushRegistration.objects.filter(pk=registration_id, user=user).delete()
    if not deleted:
        raise NotFound("No such push registration.")


def settings_of(user: User) -> NotificationSettings:
    found = NotificationSettings.objects.filter(user=user).first()
    return found if found is not None else NotificationSettings(user=user)


def update_settings(
    user: User, *, do_not_disturb: bool | None = None, show_preview: bool | None = None
) -> NotificationSettings:
    changes: dict[str, bool] = {}
    if do_not_disturb is not None:
        changes["do_not_disturb"] = do_not_disturb
    if show_preview is not None:
        changes["show_preview"] = show_preview
    preferences, _ = NotificationSettings.objects.update_or_create(user=user, defaults=changes)
    return preferences
