"""Conversations: direct (exactly two users) and groups (at most MAX_GROUP_MEMBERS), their
members and roles. Membership changes are events in every affected user's sync queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.models import User
from chat import frames, realtime
from chat.models import Conversation, ConversationKind, Membership, Role
from chat.store import get_message_store
from chat.store.base import NewEvent
from chatproject import sql
from chatproject.errors import Forbidden, NotFound, ServiceError
from chatproject.text import name_problem


class UnknownConversation(NotFound):
    code = "unknown_conversation"


class GroupFull(ServiceError):
    code = "group_full"
    status = 409


def access_conversation(user_id: int, conversation_id: int) -> tuple[Conversation, Membership]:
    """The conversation and the user's membership; non-members cannot tell it exists."""
    membership = (
        Membership.objects.select_related("conversation")
        .filter(conversation_id=conversation_id, user_id=user_id)
        .first()
    )
    if membership is None:
        raise UnknownConversation("No such conversation, or you are not a member.")
    return membership.conversation, membership


def member_ids(conversation_id: int) -> list[int]:
    return list(
        Membership.objects.filter(conversation_id=conversation_id).values_list("user_id", flat=True)
    )


def member_ids_of(conversation_ids: Iterable[int]) -> dict[int, list[int]]:
    """Members of several conversations in one query (unknown conversations: no entry)."""
    members: dict[int, list[int]] = {}
    wanted = set(conversation_ids)
    if not wanted:
        return members
    # Every send batch reads this: plain SQL, not an ORM query compiled per call.
    condition, params = sql.id_in("conversation_id", wanted)
    table = Membership._meta.db_table
    for conversation_id, user_id in sql.rows(
        f"SELECT conversation_id, user_id FROM {table} WHERE {condition}",  # noqa: S608 (constant fragments)
        params,
    ):
        members.setdefault(conversation_id, []).append(user_id)
    return members


def _active_users(user_ids: Iterable[int], *, field: str = "member_ids") -> list[int]:
    wanted = set(user_ids)
    found = set(User.objects.filter(pk__in=wanted, is_active=True).values_list("pk", flat=True))
    missing = wanted - found
    if missing:
        raise NotFound(
            "Unknown users: " + ", ".join(str(u) for u in sorted(missing)),
            code="unknown_user",
            fields={field: [f"Unknown user {u}." for u in sorted(missing)]},
        )
    return sorted(found)


def _notify(
    build: Callable[[frames.ConversationPayload], frames.StoredEventFrame],
    conversation: Conversation,
    *,
    recipients: Sequence[int],
) -> None:
    """Append the event (``build`` makes its frame from the conversation as it is now) to
    each recipient's sync queue and publish it live after commit."""
    members = member_ids(conversation.pk)
    frame = build(frames.conversation_payload(conversation, member_ids=members))
    payload = frames.stored_payload(frame)
    seqs = get_message_store().append_events(
        [
            NewEvent(
                user_id=u, kind=frame["type"], conversation_id=conversation.pk, payload=payload
            )
            for u in recipients
        ]
    )
    transaction.on_commit(lambda: realtime.publish(list(recipients), frame, seqs=seqs))


def get_or_create_direct(user: User, other_id: int) -> tuple[Conversation, bool]:
    if other_id == user.pk:
        raise ServiceError("A direct conversation needs another user.", code="invalid_member")
    _active_users([other_id], field="user_id")
    low, high = sorted((user.pk, other_id))
    key = f"{low}:{high}"
    existing = Conversation.objects.filter(direct_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=ConversationKind.DIRECT, direct_key=key, created_by=user
            )
            Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user_id=u, role=Role.MEMBER)
                    for u in (low, high)
                ]
            )
            _notify(
                partial(frames.member_added, user_ids=[low, high], actor_id=user.pk),
                conversation,
                recipients=[low, high],
            )
    except IntegrityError:  # created concurrently by the other user
        return Conversation.objects.get(direct_key=key), False
    return conversation, True


def _check_group_name(name: str) -> str:
    name = name.strip()
    problem = name_problem(name) or (None if name else "This field may not be blank.")
    if problem:
        message = "A group needs a name." if not name else problem
        raise ServiceError(message, code="invalid_name", fields={"name": [problem]})
    return name


def create_group(creator: User, *, name: str, member_ids_: Iterable[int]) -> Conversation:
    name = _check_group_name(name)
    members = _active_users(set(member_ids_) | {creator.pk})
    if len(members) > settings.MAX_GROUP_MEMBERS:
        raise GroupFull(f"A group has at most {settings.MAX_GROUP_MEMBERS} members.")
    with transaction.atomic():
        conversation = Conversation.objects.create(
            kind=ConversationKind.GROUP, name=name[:100], created_by=creator
        )
        Membership.objects.bulk_create(
            [
                Membership(
                    conversation=conversation,
                    user_id=u,
                    role=Role.OWNER if u == creator.pk else Role.MEMBER,
                )
                for u in members
            ]
        )
        _notify(
            partial(frames.member_added, user_ids=members, actor_id=creator.pk),
            conversation,
            recipients=members,
        )
    return conversation


def _require_group_admin(
    actor: User, conversation_id: int, *, by_moderator: bool = False
) -> tuple[Conversation, Membership | None]:
    """The group ``actor`` may manage: as its owner or an admin, or (``by_moderator``, the
    Django admin) as a staff moderator, who need not be a member (no membership returned)."""
    membership: Membership | None
    if by_moderator:
        if not (actor.is_active and actor.is_staff):
            raise Forbidden("Only moderators can do that.")
        conversation = Conversation.objects.filter(pk=conversation_id).first()
        if conversation is None:
            raise UnknownConversation("No such conversation.")
        membership = None
    else:
        conversation, membership = access_conversation(actor.pk, conversation_id)
    if conversation.kind != ConversationKind.GROUP:
        raise ServiceError("Direct conversations have fixed members.", code="not_a_group")
    if membership is not None and membership.role not in (Role.OWNER, Role.ADMIN):
        raise Forbidden("Only the group's owner or admins can do that.", code="not_group_admin")
    return conversation, membership


def add_members(
    actor: User, conversation_id: int, user_ids: Iterable[int], *, by_moderator: bool = False
) -> list[int]:
    with transaction.atomic():
        conversation, _ = _require_group_admin(actor, conversation_id, by_moderator=by_moderator)
        # Lock the conversation row so concurrent additions cannot overshoot the limit.
        Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        current = set(member_ids(conversation.pk))
        new = [u for u in _active_users(user_ids, field="user_ids") if u not in current]
        if len(current) + len(new) > settings.MAX_GROUP_MEMBERS:
            raise GroupFull(
                f"A group has at most {settings.MAX_GROUP_MEMBERS} members; it has {len(current)}.",
                fields={
                    "user_ids": [
                        f"At most {settings.MAX_GROUP_MEMBERS - len(current)} more can be added."
                    ]
                },
            )
        if not new:
            return []
        # Newcomers start with everything so far read: they see history, not 1,000 unreads.
        Membership.objects.bulk_create(
            [
                Membership(
                    conversation=conversation, user_id=u, last_read_id=conversation.last_message_id
                )
                for u in new
            ]
        )
        _notify(
            partial(frames.member_added, user_ids=new, actor_id=actor.pk),
            conversation,
            recipients=sorted(current | set(new)),
        )
    return new


def remove_member(
    actor: User, conversation_id: int, user_id: int, *, by_moderator: bool = False
) -> None:
    """Remove ``user_id``; a member may always remove themself (leave). A moderator may
    remove anyone, the owner included (ownership is then handed over as when they leave)."""
    with transaction.atomic():
        if user_id == actor.pk and not by_moderator:
            conversation, membership = access_conversation(actor.pk, conversation_id)
            if conversation.kind != ConversationKind.GROUP:
                raise ServiceError("You cannot leave a direct conversation.", code="not_a_group")
        else:
            conversation, _ = _require_group_admin(
                actor, conversation_id, by_moderator=by_moderator
            )
            membership = Membership.objects.filter(
                conversation=conversation, user_id=user_id
            ).first()  # type: ignore[assignment]
            if membership is None:
                raise NotFound("That user is not a member.", code="not_a_member")
            if membership.role == Role.OWNER and not by_moderator:
                raise Forbidden("The owner cannot be removed.", code="cannot_remove_owner")
        before = member_ids(conversation.pk)
        membership.delete()
        if membership.role == Role.OWNER:
            _hand_over_ownership(conversation)
        _notify(
            partial(frames.member_removed, user_ids=[user_id], actor_id=actor.pk),
            conversation,
            recipients=before,
        )


def _hand_over_ownership(conversation: Conversation) -> None:
    remaining = Membership.objects.filter(conversation=conversation).order_by("joined_at", "pk")
    # An admin takes over first, else the longest-standing member.
    successor = remaining.filter(role=Role.ADMIN).first() or remaining.first()
    if successor is not None:
        successor.role = Role.OWNER
        successor.save(update_fields=["role"])


def rename_group(
    actor: User, conversation_id: int, name: str, *, by_moderator: bool = False
) -> Conversation:
    name = _check_group_name(name)
    with transaction.atomic():
        conversation, _ = _require_group_admin(actor, conversation_id, by_moderator=by_moderator)
        conversation.name = name[:100]
        conversation.save(update_fields=["name"])
        _notify(
            partial(frames.conversation_updated, actor_id=actor.pk),
            conversation,
            recipients=member_ids(conversation.pk),
        )
    return conversation


def set_muted(user: User, conversation_id: int, *, muted: bool) -> Membership:
    _, membership = access_conversation(user.pk, conversation_id)
    membership.muted = muted
    membership.save(update_fields=["muted"])
    return membership


def memberships_of(user: User) -> QuerySet[Membership]:
    """The user's memberships, newest activity first (the conversation list)."""
    return (
        Membership.objects.filter(user=user)
        .select_related("conversation")
        .order_by("-conversation__last_message_id", "-conversation_id")
    )


def summaries(memberships: list[Membership], *, with_members: bool = False) -> list[dict[str, Any]]:
    """Conversation list entries: the conversation, the user's read state, the last message
    (one store lookup for the whole page) and, optionally, every member's read position."""
    from .payloads import membership_payload

    last_ids = [
        m.conversation.last_message_id for m in memberships if m.conversation.last_message_id
    ]
    last_messages = get_message_store().get_messages(last_ids) if last_ids else {}
    members_by_conversation: dict[int, list[dict[str, Any]]] = {}
    if with_members:
        for other in Membership.objects.filter(
            conversation_id__in=[m.conversation_id for m in memberships]
        ).order_by("pk"):
            members_by_conversation.setdefault(other.conversation_id, []).append(
                membership_payload(other)
            )
    entries = []
    for membership in memberships:
        conversation = membership.conversation
        last = last_messages.get(conversation.last_message_id)
        entry = {
            **frames.conversation_payload(conversation),
            "last_message": frames.message_payload(last, full=False) if last else None,
            "unread_count": membership.unread_count,
            "last_read_id": membership.last_read_id,
            "muted": membership.muted,
            "role": membership.role,
        }
        if with_members:
            entry["members"] = members_by_conversation.get(conversation.pk, [])
        entries.append(entry)
    return entries
