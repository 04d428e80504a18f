"""Request and response shapes of the chat REST API."""

from __future__ import annotations

from typing import Any

from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from chatproject.api.query import QuerySerializer
from chatproject.limits import (
    HISTORY_PAGE_DEFAULT,
    HISTORY_PAGE_MAX,
    MAX_CLIENT_MSG_ID_LENGTH,
    MAX_ID,
    SYNC_PAGE_DEFAULT,
    SYNC_PAGE_MAX,
)
from chatproject.text import validate_name


class MessageSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    sender_id = serializers.IntegerField()
    client_msg_id = serializers.CharField()
    text = serializers.CharField()
    length = serializers.IntegerField()
    truncated = serializers.BooleanField()
    created_at = serializers.CharField()
    edited_at = serializers.CharField(allow_null=True)
    deleted = serializers.BooleanField()


class MemberSerializer(serializers.Serializer[Any]):
    user_id = serializers.IntegerField()
    role = serializers.CharField()
    last_read_id = serializers.IntegerField()
    last_delivered_id = serializers.IntegerField()


class ConversationSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["direct", "group"])
    name = serializers.CharField(allow_blank=True)
    created_at = serializers.CharField()
    last_message_id = serializers.IntegerField(allow_null=True)
    last_message = MessageSerializer(allow_null=True, required=False)
    unread_count = serializers.IntegerField()
    last_read_id = serializers.IntegerField()
    muted = serializers.BooleanField()
    role = serializers.CharField()
    members = MemberSerializer(many=True, required=False)


class CreateConversationSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["direct", "group"])
    user_id = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="The other user (direct)."
    )
    name = serializers.CharField(
        required=False,
        max_length=100,
        allow_blank=True,
        validators=[validate_name],
        help_text="Group name: no control or bidi characters, not only invisible ones.",
    )
    member_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=200,
        help_text="Group members.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == "direct" and "user_id" not in attrs:
            raise serializers.ValidationError({"user_id": ["Required for a direct conversation."]})
        if attrs["kind"] == "group" and not attrs.get("name", "").strip():
            raise serializers.ValidationError({"name": ["Required for a group."]})
        return attrs


class UpdateConversationSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(required=False, max_length=100, validators=[validate_name])
    muted = serializers.BooleanField(required=False)


class AddMembersSerializer(serializers.Serializer[Any]):
    user_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1, max_length=200
    )


class ServiceCheckedCharField(serializers.CharField):
    """A string the service checks for NUL and lone surrogates (chatproject.text), so REST
    answers the same code as the WebSocket (``invalid_text``, ``invalid_client_msg_id``)
    instead of DRF's generic ``validation_error``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [
            validator
            for validator in self.validators
            if not isinstance(
                validator, ProhibitNullCharactersValidator | ProhibitSurrogateCharactersValidator
            )
        ]


class SendSerializer(serializers.Serializer[Any]):
    client_msg_id = ServiceCheckedCharField(min_length=1, max_length=MAX_CLIENT_MSG_ID_LENGTH)
    # Length is checked by the send service (one rule for REST and WebSocket).
    text = ServiceCheckedCharField(trim_whitespace=False, allow_blank=True)


class SentSerializer(serializers.Serializer[Any]):
    message = MessageSerializer()
    seq = serializers.IntegerField()
    duplicate = serializers.BooleanField()


class EditSerializer(serializers.Serializer[Any]):
    text = ServiceCheckedCharField(trim_whitespace=False, allow_blank=True)


class ReadSerializer(serializers.Serializer[Any]):
    message_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class ReadStateSerializer(serializers.Serializer[Any]):
    last_read_id = serializers.IntegerField()
    unread_count = serializers.IntegerField()


class ConversationPageSerializer(serializers.Serializer[Any]):
    results = ConversationSerializer(many=True)
    has_more = serializers.BooleanField(help_text="More conversations after this page.")


class MessagePageSerializer(serializers.Serializer[Any]):
    results = MessageSerializer(many=True, help_text="Newest first.")


class SyncPageSerializer(serializers.Serializer[Any]):
    events = serializers.ListField(child=serializers.DictField())
    last_seq = serializers.IntegerField()
    has_more = serializers.BooleanField()
    reset = serializers.BooleanField(
        help_text="The cursor is older than the retained window: reload over REST, then "
        "continue from last_seq (events is empty)."
    )


# --- query parameters -------------------------------------------------------------------


class HistoryQuerySerializer(QuerySerializer):
    before = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Messages with smaller ids (older).",
    )
    after = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_ID, help_text="Messages with larger ids (newer)."
    )
    limit = serializers.IntegerField(
        required=False, default=HISTORY_PAGE_DEFAULT, min_value=1, max_value=HISTORY_PAGE_MAX
    )


class SyncQuerySerializer(QuerySerializer):
    after = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=MAX_ID,
        help_text="Events with larger seqs.",
    )
    limit = serializers.IntegerField(
        required=False, default=SYNC_PAGE_DEFAULT, min_value=1, max_value=SYNC_PAGE_MAX
    )
