"""Presence: who is online, transitions fanned out to watchers, typing indicators.

A user is *online* while at least one of their connections is live in the presence backend
(presence.backends). Watchers of a user are the users whose screens show them: everyone
who has them in their contact list, and their direct (1:1) conversation partners. Group
co-members are not watchers (a group of 100 would multiply every transition by 100); they
can poll ``GET /api/v1/presence``.

Only transitions are published (offline -> online, online -> offline), as ephemeral
``presence`` events through chat.realtime, whose routed publish reaches only the
processes holding a watcher, so offline watchers cost nothing. Nothing here runs per
heartbeat: connections refresh their leases once per tick (presence.session).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from django.conf import settings

from accounts.models import Contact, User
from chat import realtime
from chat.models import ConversationKind, Membership
from chat.services.conversations import UnknownConversation, member_ids
from chat.services.payloads import iso
from chatproject.errors import ServiceError

from .backends import Lease, get_backend
from .frames import PresenceFrame, Status, TypingEventFrame
from .frames import PresencePayload as PresencePayload  # noqa: PLC0414 (REST's type too)
from .models import Presence

# Most users one REST query may ask about; most users a connection's snapshot covers.
MAX_QUERY_USERS = 200
MAX_WATCHED_USERS = 1_000
SWEEP_BATCH = 1_000


class TooManyUsers(ServiceError):
    code = "too_many_users"
    status = 400


def _timestamp(seconds: float) -> str | None:
    return iso(datetime.fromtimestamp(seconds, tz=UTC))


def _payload(user_id: int, status: Status | None, last_active_at: str | None) -> PresencePayload:
    return {"user_id": user_id, "status": status, "last_active_at": last_active_at}


def _event(payload: PresencePayload) -> PresenceFrame:
    # "type" first: consumers recognise presence events by this prefix without parsing.
    return {"type": "presence", **payload}


# --- who watches whom -----------------------------------------------------------------------


def watchers_of(user_ids: Iterable[int]) -> dict[int, set[int]]:
    """User id -> the users whose screens show them (contact owners, direct partners)."""
    ids = list(user_ids)
    watchers: dict[int, set[int]] = defaultdict(set)
    for subject, owner in Contact.objects.filter(contact_id__in=ids).values_list(
        "contact_id", "owner_id"
    ):
        watchers[subject].add(owner)
    for subject, partner in Membership.objects.filter(
        conversation__kind=ConversationKind.DIRECT, conversation__memberships__user_id__in=ids
    ).values_list("conversation__memberships__user_id", "user_id"):
        if partner != subject:
            watchers[subject].add(partner)
    return watchers


def watched_by(viewer_id: int) -> list[int]:
    """The users whose presence ``viewer_id``'s devices show (at most MAX_WATCHED_USERS)."""
    contacts = Contact.objects.filter(owner_id=viewer_id).values_list("contact_id", flat=True)
    partners = (
        Membership.objects.filter(
            conversation__kind=ConversationKind.DIRECT,
            conversation__memberships__user_id=viewer_id,
        )
        .exclude(user_id=viewer_id)
        .values_list("user_id", flat=True)
    )
    return sorted({*contacts[:MAX_WATCHED_USERS], *partners[:MAX_WATCHED_USERS]})[
        :MAX_WATCHED_USERS
    ]


def _hidden(user_ids: Iterable[int]) -> set[int]:
    return set(
        Presence.objects.filter(user_id__in=list(user_ids), hidden=True).values_list(
            "user_id", flat=True
        )
    )


def _publish(payloads: Sequence[PresencePayload]) -> None:
    """Publish each transition to its user's watchers, except for users who hide."""
    subjects = [p["user_id"] for p in payloads]
    hidden = _hidden(subjects)
    watchers = watchers_of(s for s in subjects if s not in hidden)
    events = [
        realtime.Outgoing(sorted(watchers[p["user_id"]]), _event(p))
        for p in payloads
        if p["user_id"] not in hidden and watchers.get(p["user_id"])
    ]
    if events:
        # One round trip for all of them (a sweep can take many users offline at once).
        realtime.publish_many(events)


# --- transitions ----------------------------------------------------------------------------


def connection_opened(*, user_id: int, member: str) -> None:
    """A connection went live; publishes ``online`` if it is the user's first."""
    connections_opened([(user_id, member)])


def connections_opened(openings: Sequence[tuple[int, str]]) -> list[None]:
    """Connections ``(user id, member)`` went live: one backend round trip and one publish
    for the batch; ``online`` for each user whose first connection this is."""
    now = time.time()
    expiry = now + settings.PRESENCE_TIMEOUT
    leases = [Lease(user_id=user_id, member=member, expiry=expiry) for user_id, member in openings]
    came_online = get_backend().connect_many(leases, now=now)
    online = [
        _payload(lease.user_id, "online", _timestamp(now))
        for lease, first in zip(leases, came_online, strict=True)
        if first
    ]
    if online:
        _publish(online)
    return [None] * len(openings)


def connection_closed(*, user_id: int, member: str, last_frame_at: float) -> None:
    """A connection ended; if it was the user's last, stores last activity and publishes
    ``offline``."""
    connections_closed([(user_id, member, last_frame_at)])


def connections_closed(closings: Sequence[tuple[int, str, float]]) -> list[None]:
    """Connections ``(user id, member, last frame at)`` ended: one backend round trip for
    the batch; each user whose last connection this was gets its last activity stored and
    ``offline`` published."""
    went_offline = get_backend().disconnect_many(
        [(user_id, member) for user_id, member, _ in closings], now=time.time()
    )
    went = [
        (user_id, last_frame_at)
        for (user_id, _, last_frame_at), last in zip(closings, went_offline, strict=True)
        if last
    ]
    if went:
        _went_offline(went)
    return [None] * len(closings)


def refresh_leases(leases: Sequence[Lease]) -> list[Lease]:
    """Extend this process's live connections (once per tick, one round trip). Returns the
    leases that were swept meanwhile (a stalled process, lost Redis state): the caller
    re-opens those that are still connected."""
    return get_backend().refresh(leases)


def sweep_expired() -> list[int]:
    """Take offline the users whose every connection expired (their process died, or their
    sockets went silent). At most one process does the work per tick."""
    now = time.time()
    gone = get_backend().sweep(now=now, limit=SWEEP_BATCH, lock_seconds=settings.PRESENCE_TICK)
    if gone:
        _went_offline([(user_id, expiry - settings.PRESENCE_TIMEOUT) for user_id, expiry in gone])
    return [user_id for user_id, _ in gone]


def _went_offline(went: Sequence[tuple[int, float]]) -> None:
    # A user deleted while connected has no row to write (and must not fail the batch).
    existing = set(User.objects.filter(pk__in=[u for u, _ in went]).values_list("pk", flat=True))
    users = [(user_id, at) for user_id, at in went if user_id in existing]
    if not users:
        return
    # The only database write of presence: once per offline transition, never per heartbeat.
    rows = [
        Presence(user_id=user_id, last_active_at=datetime.fromtimestamp(at, tz=UTC))
        for user_id, at in users
    ]
    Presence.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["user"], update_fields=["last_active_at"]
    )
    _publish([_payload(user_id, "offline", _timestamp(at)) for user_id, at in users])


# --- reading presence -----------------------------------------------------------------------


def _presence(
    user_ids: Sequence[int], *, visible: set[int], viewer_id: int | None = None
) -> list[PresencePayload]:
    """Presence of ``user_ids`` as a viewer sees it: ``visible`` users get a status unless
    they hide it from others."""
    shown = [u for u in user_ids if u in visible]
    online = get_backend().online(shown, now=time.time())
    rows = {row.user_id: row for row in Presence.objects.filter(user_id__in=shown)}
    now = _timestamp(time.time())
    result: list[PresencePayload] = []
    for user_id in user_ids:
        row = rows.get(user_id)
        if user_id not in visible or (row is not None and row.hidden and user_id != viewer_id):
            result.append(_payload(user_id, None, None))
        elif user_id in online:
            result.append(_payload(user_id, "online", now))
        else:
            last = row.last_active_at if row is not None else None
            result.append(_payload(user_id, "offline", iso(last)))
    return result


def snapshot(viewer_id: int) -> list[PresencePayload]:
    """Presence of everyone ``viewer_id`` watches: a device's starting point."""
    watched = watched_by(viewer_id)
    return _presence(watched, visible=set(watched))


def presence_of(viewer_id: int, user_ids: Sequence[int]) -> list[PresencePayload]:
    """Presence of a bounded list of users for clients that poll.

    Users the viewer has no relation with (not a contact, no shared conversation) get no
    status, exactly like users who hide their presence: presence is not public.
    """
    ids = list(dict.fromkeys(user_ids))
    if len(ids) > MAX_QUERY_USERS:
        raise TooManyUsers(
            f"Ask for at most {MAX_QUERY_USERS} users at a time; this asked for {len(ids)}.",
            fields={"ids": [f"At most {MAX_QUERY_USERS} user ids."]},
        )
    related = set(
        Contact.objects.filter(owner_id=viewer_id, contact_id__in=ids).values_list(
            "contact_id", flat=True
        )
    )
    related.update(
        Membership.objects.filter(
            user_id__in=ids, conversation__memberships__user_id=viewer_id
        ).values_list("user_id", flat=True)
    )
    related.add(viewer_id)
    return _presence(ids, visible=related, viewer_id=viewer_id)


def is_hidden(user_id: int) -> bool:
    return Presence.objects.filter(user_id=user_id, hidden=True).exists()


def set_hidden(user_id: int, *, hidden: bool) -> bool:
    """Hide or show the user's presence; watchers learn the new view at once."""
    row, created = Presence.objects.get_or_create(user_id=user_id, defaults={"hidden": hidden})
    if created and not hidden:
        return hidden  # a new row with the default: nothing changed for anyone
    if not created:
        if row.hidden == hidden:
            return hidden
        row.hidden = hidden
        row.save(update_fields=["hidden"])
    if hidden:
        payload = _payload(user_id, None, None)
    else:
        (payload,) = _presence([user_id], visible={user_id})
    watchers = watchers_of([user_id]).get(user_id)
    if watchers:
        realtime.publish(sorted(watchers), _event(payload))
    return hidden


# --- typing ---------------------------------------------------------------------------------


def typing_recipients(user_id: int, conversation_id: int) -> list[int]:
    """The other members of a conversation ``user_id`` may type in (one query)."""
    members = member_ids(conversation_id)
    if user_id not in members:
        raise UnknownConversation("No such conversation, or you are not a member.")
    return [m for m in members if m != user_id]


async def publish_typing(*, user_id: int, conversation_id: int, recipients: Sequence[int]) -> None:
    """Ephemeral: sent once to the other members' connected devices, never stored."""
    frame: TypingEventFrame = {
        "type": "typing",
        "conversation_id": conversation_id,
        "user_id": user_id,
    }
    await realtime.apublish(list(recipients), frame)
