"""The push decision: which registered devices get which message (mute, do-not-disturb,
own messages, already read, preview setting, badge), each (registration, message) pair
claimed once in ``PushDelivery``; and the silent clearing update after a read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from chat.models import Conversation, Membership
from chat.store import get_message_store
from chat.store.base import EventKind, StoredMessage

from . import payloads
from .models import NotificationSettings, PushDelivery, PushRegistration
from .registrations import usable_registrations
from .sending import send_in_batches
from .task_payloads import NewMessagePush

# An unacknowledged device is pushed for at most this many conversations at once.
UNACKED_CONVERSATIONS_LIMIT = 20
UNACKED_SYNC_READ_LIMIT = 500


@dataclass(frozen=True, slots=True)
class _Candidate:
    registration: PushRegistration
    message: StoredMessage


def push_new_message(
    *, message_id: int, conversation_id: int, user_ids: Sequence[int], claim: str
) -> int:
    """Push a new message to every registered device of ``user_ids`` (the recipients that
    were offline when it was sent). Returns how many pushes were queued."""
    registrations = list(usable_registrations().filter(user_id__in=user_ids))
    if not registrations:
        return 0
    message = get_message_store().get_messages([message_id]).get(message_id)
    if message is None or message.is_deleted or message.conversation_id != conversation_id:
        return 0
    return _push_messages(registrations, [message], claim=claim)


def push_new_messages(*, messages: Sequence[NewMessagePush], claim: str) -> int:
    """``push_new_message`` for each of ``messages``: one query finds out whether any
    recipient has a registration at all (most batches stop there)."""
    wanted = {user_id for push in messages for user_id in push.user_ids}
    registrations = list(usable_registrations().filter(user_id__in=wanted))
    if not registrations:
        return 0
    found = get_message_store().get_messages(push.message_id for push in messages)
    pushed = 0
    for push in messages:
        message = found.get(push.message_id)
        if message is None or message.is_deleted or message.conversation_id != push.conversation_id:
            continue
        recipients = set(push.user_ids)
        mine = [r for r in registrations if r.user_id in recipients]
        if mine:
            pushed += _push_messages(mine, [message], claim=claim)
    return pushed


def push_unacked(
    *, user_id: int, device_id: int, acked_seq: int, delivered_seq: int, claim: str
) -> int:
    """Push one device for the messages it was sent but did not acknowledge: the newest
    unread one per conversation (the notification of a conversation shows its latest)."""
    registration = usable_registrations().filter(device_id=device_id, user_id=user_id).first()
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
    memberships, preferences = _recipient_settings(user_ids, messages)
    candidates = _candidates(registrations, messages, memberships, preferences)
    if not candidates:
        return 0
    deliveries = _claim(candidates, claim=claim)
    if not deliveries:
        return 0
    items = _message_pushes(candidates, deliveries, messages, preferences, user_ids)
    send_in_batches(items)
    return len(items)


def _recipient_settings(
    user_ids: set[int], messages: Sequence[StoredMessage]
) -> tuple[dict[tuple[int, int], Membership], dict[int, NotificationSettings]]:
    """Each recipient's membership of each message's conversation (mute, read position),
    and their notification settings: two queries."""
    memberships = {
        (m.user_id, m.conversation_id): m
        for m in Membership.objects.filter(
            user_id__in=user_ids, conversation_id__in={m.conversation_id for m in messages}
        ).only("user_id", "conversation_id", "muted", "last_read_id")
    }
    preferences = {s.user_id: s for s in NotificationSettings.objects.filter(user_id__in=user_ids)}
    return memberships, preferences


def _candidates(
    registrations: Sequence[PushRegistration],
    messages: Sequence[StoredMessage],
    memberships: dict[tuple[int, int], Membership],
    preferences: dict[int, NotificationSettings],
) -> list[_Candidate]:
    """The (registration, message) pairs worth a push: not muted, not do-not-disturb, not
    one's own message, not read elsewhere already."""
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
    return candidates


def _message_pushes(
    candidates: Sequence[_Candidate],
    deliveries: dict[tuple[int, int], int],
    messages: Sequence[StoredMessage],
    preferences: dict[int, NotificationSettings],
    user_ids: set[int],
) -> list[tuple[PushRegistration, int | None, dict[str, Any]]]:
    """The payload of each claimed candidate (conversation, sender name, preview, badge):
    three queries whatever the number of pushes."""
    conversations = {
        c.pk: c
        for c in Conversation.objects.filter(pk__in={m.conversation_id for m in messages}).only(
            "kind", "name"
        )
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
    return items


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
    registrations = list(usable_registrations().filter(pk__in=registration_ids))
    # Marked before sending: a clear that fails for good is not worth a second try at the
    # next read, and two reads racing send one clear each at most.
    shown.update(cleared_at=timezone.now())
    if not registrations:
        return 0
    badge = unread_totals([user_id]).get(user_id, 0)
    payload = dict(
        payloads.clear_push(conversation_id=conversation_id, last_read_id=last_read_id, badge=badge)
    )
    send_in_batches([(registration, None, payload) for registration in registrations])
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
