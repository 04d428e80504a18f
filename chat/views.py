"""Chat REST endpoints. Each view parses input, calls chat.services, shapes output."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_user
from accounts.models import User
from chat.services import conversations, messages, sync
from chat.services.payloads import message_payload
from chatproject.api.schema import errors, integer_parameter
from chatproject.errors import NotFound
from chatproject.limits import MAX_ID, SYNC_PAGE_DEFAULT, SYNC_PAGE_MAX

from .serializers import (
    AddMembersSerializer,
    ConversationPageSerializer,
    ConversationSerializer,
    CreateConversationSerializer,
    EditSerializer,
    MessagePageSerializer,
    MessageSerializer,
    ReadSerializer,
    ReadStateSerializer,
    SendSerializer,
    SentSerializer,
    SyncPageSerializer,
    UpdateConversationSerializer,
)


def _int_param(
    request: Request, name: str, *, default: int | None = None, low: int = 0, high: int = MAX_ID
) -> int | None:
    from rest_framework.exceptions import ValidationError

    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["A whole number is required."]}) from None
    if not low <= value <= high:
        raise ValidationError({name: [f"Must be between {low} and {high}."]})
    return value


class ChatView(APIView):
    """Base of the chat views. Ids in the path are already within 64 bits: the ``<id:...>``
    converter (chatproject/converters.py) answers 404 for anything else."""


def _summary(user: User, conversation_id: int) -> dict[str, Any]:
    _, membership = conversations.access_conversation(user.pk, conversation_id)
    return conversations.summaries([membership], with_members=True)[0]


class ConversationListView(ChatView):
    @extend_schema(
        parameters=[
            integer_parameter("limit", minimum=1, maximum=200, default=50),
            integer_parameter("offset", default=0),
        ],
        responses={200: ConversationPageSerializer},
        operation_id="v1_conversations_list",
        summary="The user's conversations, latest activity first",
    )
    def get(self, request: Request) -> Response:
        limit = _int_param(request, "limit", default=50, low=1, high=200) or 50
        offset = _int_param(request, "offset", default=0) or 0
        page = list(
            conversations.memberships_of(request_user(request))[offset : offset + limit + 1]
        )
        body = conversations.summaries(page[:limit])
        return Response({"results": body, "has_more": len(page) > limit})

    @extend_schema(
        request=CreateConversationSerializer,
        responses={
            201: ConversationSerializer,
            200: ConversationSerializer,
            **errors(404, 409),
        },
        summary="Start a direct conversation or create a group",
    )
    def post(self, request: Request) -> Response:
        data = CreateConversationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = request_user(request)
        if values["kind"] == "direct":
            conversation, created = conversations.get_or_create_direct(user, values["user_id"])
        else:
            conversation = conversations.create_group(
                user, name=values["name"], member_ids_=values.get("member_ids", [])
            )
            created = True
        return Response(
            _summary(user, conversation.pk),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ConversationDetailView(ChatView):
    @extend_schema(
        responses={200: ConversationSerializer},
        summary="One conversation with its members' read positions",
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        return Response(_summary(request_user(request), conversation_id))

    @extend_schema(
        request=UpdateConversationSerializer,
        responses={200: ConversationSerializer, **errors(403)},
        summary="Rename a group, or mute/unmute for yourself",
    )
    def patch(self, request: Request, conversation_id: int) -> Response:
        data = UpdateConversationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request_user(request)
        if "name" in data.validated_data:
            conversations.rename_group(user, conversation_id, data.validated_data["name"])
        if "muted" in data.validated_data:
            conversations.set_muted(user, conversation_id, muted=data.validated_data["muted"])
        return Response(_summary(user, conversation_id))


class MemberListView(ChatView):
    @extend_schema(
        request=AddMembersSerializer,
        responses={200: ConversationSerializer, **errors(403, 409)},
        summary="Add members to a group",
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        data = AddMembersSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request_user(request)
        conversations.add_members(user, conversation_id, data.validated_data["user_ids"])
        return Response(_summary(user, conversation_id))


class MemberDetailView(ChatView):
    @extend_schema(
        request=None,
        responses={204: None, **errors(400, 403)},
        summary="Remove a member, or leave (your own id)",
    )
    def delete(self, request: Request, conversation_id: int, user_id: int) -> Response:
        conversations.remove_member(request_user(request), conversation_id, user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageListView(ChatView):
    @extend_schema(
        parameters=[
            integer_parameter(
                "before", minimum=1, description="Messages with smaller ids (older)."
            ),
            integer_parameter("after", description="Messages with larger ids (newer)."),
            integer_parameter("limit", minimum=1, maximum=100, default=50),
        ],
        responses={200: MessagePageSerializer},
        operation_id="v1_conversations_messages_list",
        summary="A page of history, newest first",
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        page = messages.history_page(
            request_user(request).pk,
            conversation_id,
            before=_int_param(request, "before", low=1),
            after=_int_param(request, "after", low=0),
            limit=_int_param(request, "limit", default=50, low=1, high=100) or 50,
        )
        return Response({"results": [message_payload(m) for m in page]})

    @extend_schema(
        request=SendSerializer,
        responses={201: SentSerializer, 200: SentSerializer, **errors(413)},
        summary="Send a message",
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        data = SendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = messages.send_message(
            sender_id=request_user(request).pk,
            conversation_id=conversation_id,
            client_msg_id=data.validated_data["client_msg_id"],
            text=data.validated_data["text"],
        )
        body = {
            "message": message_payload(result.message),
            "seq": result.seq,
            "duplicate": result.duplicate,
        }
        return Response(
            body, status=status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED
        )


class MessageDetailView(ChatView):
    @extend_schema(responses={200: MessageSerializer}, summary="One message with its full text")
    def get(self, request: Request, message_id: int) -> Response:
        found = messages.fetch_messages(request_user(request).pk, [message_id])
        if not found:
            raise NotFound("No such message.", code="unknown_message")
        return Response(message_payload(found[0]))

    @extend_schema(
        request=EditSerializer,
        responses={200: MessageSerializer, **errors(403, 409)},
        summary="Edit your message",
    )
    def patch(self, request: Request, message_id: int) -> Response:
        data = EditSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        edited = messages.edit_message(
            user_id=request_user(request).pk,
            message_id=message_id,
            text=data.validated_data["text"],
        )
        return Response(message_payload(edited))

    @extend_schema(
        request=None,
        responses={204: None, **errors(403, 409)},
        summary="Delete your message (leaves a tombstone)",
    )
    def delete(self, request: Request, message_id: int) -> Response:
        messages.delete_message(user_id=request_user(request).pk, message_id=message_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReadView(ChatView):
    @extend_schema(
        request=ReadSerializer,
        responses={200: ReadStateSerializer},
        summary="Mark read up to a message",
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        data = ReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = sync.mark_read(
            user_id=request_user(request).pk,
            conversation_id=conversation_id,
            message_id=data.validated_data["message_id"],
        )
        return Response(
            {"last_read_id": membership.last_read_id, "unread_count": membership.unread_count}
        )


class SyncView(ChatView):
    @extend_schema(
        parameters=[
            integer_parameter("after", default=0, description="Events with larger seqs."),
            integer_parameter("limit", minimum=1, maximum=SYNC_PAGE_MAX, default=SYNC_PAGE_DEFAULT),
        ],
        responses={200: SyncPageSerializer},
        summary="A page of the user's sync queue after a cursor (for clients without a socket)",
    )
    def get(self, request: Request) -> Response:
        page = sync.sync_page(
            request_user(request).pk,
            after_seq=_int_param(request, "after", default=0) or 0,
            limit=_int_param(request, "limit", default=SYNC_PAGE_DEFAULT, low=1, high=SYNC_PAGE_MAX)
            or SYNC_PAGE_DEFAULT,
        )
        return Response(
            {"events": page.events, "last_seq": page.last_seq, "has_more": page.has_more}
        )
