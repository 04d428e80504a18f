"""Sending, editing and deleting messages: the seed's send flow.

``send_message`` is the only way a message is written (the WebSocket consumer and the
REST view both call it):

1. validate (member of the conversation, 1..MAX_MESSAGE_LENGTH characters, not blank,
   per-user rate limit);
2. take a 64-bit time-sortable id from the id generator (no central round trip);
3. store the message and append one entry to every member's sync queue (the sender's
   too, for their other devices), atomically, in the message store;
4. after commit: acknowledge to the sending device and publish the event once, routed
   to the processes holding the members' connections.

The database and Redis round trips are the same for a group of 2 and of 100 (asserted in
tests/chat/test_send_cost.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chat import ids, ratelimit, realtime
from chat.models import Conversation, Membership
from chat.store import get_message_store
from chat.store.base import EventKind, NewMessage, StoredMessage
from chatproject.errors import Forbidden, NotFound, ServiceError

from .conversations import UnknownConversation, access_conversation, member_ids
from .payloads import message_payload


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
    if not text.strip():
        raise InvalidText(
            "A message cannot be empty.", fields={"text": ["This field may not be blank."]}
        )
    if "\x00" in text:
        raise InvalidText(
            "A message cannot contain NUL characters.", fields={"text": ["NUL character."]}
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidText(
            "A message must be valid Unicode (no lone surrogates).",
            fields={"text": ["Invalid Unicode."]},
        ) from None
    return text


def send_message(
    *,
    sender_id: int,
    conversation_id: int,
    client_msg_id: str,
    text: str,
    device_id: int | None = None,
) -> SendResult:
    validate_text(text)
    if not client_msg_id or len(client_msg_id) > 64:
        raise ServiceError(
            "client_msg_id must be 1 to 64 characters.", code="invalid_client_msg_id"
        )
    members = member_ids(conversation_id)
    if sender_id not in members:
        raise UnknownConversation("No such conversation, or you are not a member.")
    ratelimit.hit("send", sender_id, limit=settings.SEND_RATE_LIMIT_PER_10S, window_seconds=10)

    store = get_message_store()
    new = NewMessage(
        id=ids.next_id(),
        conversation_id=conversation_id,
        sender_id=sender_id,
        client_msg_id=client_msg_id,
        text=text,
        created_at=timezone.now(),
    )
    with transaction.atomic():
        result = store.put_message(new, recipient_ids=members)
        if result.created:
            Conversation.objects.filter(pk=conversation_id, last_message_id__lt=new.id).update(
                last_message_id=new.id
            )
            Membership.objects.filter(conversation_id=conversation_id).exclude(
                user_id=sender_id
            ).update(unread_count=F("unread_count") + 1)
            frame = {
                "type": EventKind.MESSAGE,
                "message": message_payload(result.message, full=False),
            }
            seqs = dict(result.seqs)
            transaction.on_commit(
                lambda: realtime.publish(members, frame, seqs=seqs, skip_device_id=device_id)
            )
    return SendResult(
        message=result.message, seq=result.seqs[sender_id], duplicate=not result.created
    )


def _access_own_message(user_id: int, message_id: int) -> StoredMessage:
    message = get_message_store().get_messages([message_id]).get(message_id)
    if message is None:
        raise NotFound("No such message.", code="unknown_message")
    try:
        access_conversation(user_id, message.conversation_id)
    except UnknownConversation:  # outsiders cannot tell a real message id from a made-up one
        raise NotFound("No such message.", code="unknown_message") from None
    if message.sender_id != user_id:
        raise Forbidden("You can only change your own messages.", code="not_your_message")
    if message.is_deleted:
        raise ServiceError("That message was deleted.", code="message_deleted", status=409)
    return message


def edit_message(*, user_id: int, message_id: int, text: str) -> StoredMessage:
    validate_text(text)
    message = _access_own_message(user_id, message_id)
    members = member_ids(message.conversation_id)
    with transaction.atomic():
        edited, seqs = get_message_store().edit_message(
            message.id, text=text, edited_at=timezone.now(), recipient_ids=members
        )
        frame = {"type": EventKind.EDITED, "message": message_payload(edited, full=False)}
        transaction.on_commit(lambda: realtime.publish(members, frame, seqs=seqs))
    return edited


def delete_message(*, user_id: int | None, message_id: int) -> StoredMessage:
    """Delete (tombstone) a message: its sender's own, or any with ``user_id=None``
    (moderation from the admin)."""
    if user_id is None:
        message = get_message_store().get_messages([message_id]).get(message_id)
        if message is None:
            raise NotFound("No such message.", code="unknown_message")
        if message.is_deleted:
            return message
    else:
        message = _access_own_message(user_id, message_id)
    members = member_ids(message.conversation_id)
    with transaction.atomic():
        deleted, seqs = get_message_store().tombstone_message(
            message.id, deleted_at=timezone.now(), recipient_ids=members
        )
        # A deleted message no longer counts as unread for those who had not read it.
        Membership.objects.filter(
            conversation_id=message.conversation_id, last_read_id__lt=message.id, unread_count__gt=0
        ).exclude(user_id=message.sender_id).update(unread_count=F("unread_count") - 1)
        frame = {"type": EventKind.DELETED, "message": message_payload(deleted)}
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
        conversation_id, before=before, after=after, limit=min(limit, 100)
    )
