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
from chat import replies
from chat.frames import message_payload
from chat.services import conversations, messages, sync
from chatproject.api.input import accepts
from chatproject.api.pagination import HasMorePagination
from chatproject.api.schema import errors, integer_parameter
from chatproject.errors import NotFound
from chatproject.limits import CONVERSATION_PAGE_DEFAULT, CONVERSATION_PAGE_MAX

from .serializers import (
    AddMembersSerializer,
    ConversationPageSerializer,
    ConversationSerializer,
    CreateConversationSerializer,
    EditSerializer,
    HistoryQuerySerializer,
    MessagePageSerializer,
    MessageSerializer,
    ReadSerializer,
    ReadStateSerializer,
    SendSerializer,
    SentSerializer,
    SyncPageSerializer,
    SyncQuerySerializer,
    UpdateConversationSerializer,
)


class ConversationPagination(HasMorePagination):
    default_limit = CONVERSATION_PAGE_DEFAULT
    max_limit = CONVERSATION_PAGE_MAX


class ChatView(APIView):
    """Base of the chat views. Ids in the path are already within 64 bits: the ``<id:...>``
    converter (chatproject/converters.py) answers 404 for anything else."""


def _summary(user: User, conversation_id: int) -> dict[str, Any]:
    _, membership = conversations.access_conversation(user.pk, conversation_id)
    return conversations.summaries([membership], with_members=True)[0]


class ConversationListView(ChatView):
    @extend_schema(
        parameters=[
            integer_parameter(
                "limit",
                minimum=1,
                maximum=ConversationPagination.max_limit,
                default=ConversationPagination.default_limit,
            ),
            integer_parameter("offset", default=0),
        ],
        responses={200: ConversationPageSerializer},
        operation_id="v1_conversations_list",
    )
    def get(self, request: Request) -> Response:
        """The user's conversations, latest activity first."""
        paginator = ConversationPagination()
        page = paginator.paginate_queryset(
            conversations.memberships_of(request_user(request)), request, self
        )
        return paginator.get_paginated_response(conversations.summaries(page))

    @accepts(
        CreateConversationSerializer,
        responses={
            201: ConversationSerializer,
            200: ConversationSerializer,
            **errors(404, 409),
        },
    )
    def post(self, request: Request, values: dict[str, Any]) -> Response:
        """Start a direct conversation or create a group."""
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
    @extend_schema(responses={200: ConversationSerializer})
    def get(self, request: Request, conversation_id: int) -> Response:
        """One conversation with its members' read positions."""
        return Response(_summary(request_user(request), conversation_id))

    @accepts(UpdateConversationSerializer, responses={200: ConversationSerializer, **errors(403)})
    def patch(self, request: Request, values: dict[str, Any], conversation_id: int) -> Response:
        """Rename a group, or mute/unmute for yourself."""
        user = request_user(request)
        if "name" in values:
            conversations.rename_group(user, conversation_id, values["name"])
        if "muted" in values:
            conversations.set_muted(user, conversation_id, muted=values["muted"])
        return Response(_summary(user, conversation_id))


class MemberListView(ChatView):
    @accepts(AddMembersSerializer, responses={200: ConversationSerializer, **errors(403, 409)})
    def post(self, request: Request, values: dict[str, Any], conversation_id: int) -> Response:
        """Add members to a group."""
        user = request_user(request)
        user_ids = values["user_ids"]
        conversations.add_members(user, conversation_id, user_ids)
        return Response(_summary(user, conversation_id))


class MemberDetailView(ChatView):
    @extend_schema(request=None, responses={204: None, **errors(400, 403)})
    def delete(self, request: Request, conversation_id: int, user_id: int) -> Response:
        """Remove a member, or leave (your own id)."""
        conversations.remove_member(request_user(request), conversation_id, user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageListView(ChatView):
    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses={200: MessagePageSerializer},
        operation_id="v1_conversations_messages_list",
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        """A page of history, newest first."""
        query = HistoryQuerySerializer.parse(request)
        page = messages.history_page(
            request_user(request).pk,
            conversation_id,
            before=query.get("before"),
            after=query.get("after"),
            limit=query["limit"],
        )
        return Response({"results": replies.messages_body(page)})

    @accepts(SendSerializer, responses={201: SentSerializer, 200: SentSerializer, **errors(413)})
    def post(self, request: Request, values: dict[str, Any], conversation_id: int) -> Response:
        """Send a message."""
        result = messages.send_message(
            sender_id=request_user(request).pk,
            conversation_id=conversation_id,
            client_msg_id=values["client_msg_id"],
            text=values["text"],
        )
        return Response(
            replies.sent_body(result),
            status=status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED,
        )


class MessageDetailView(ChatView):
    @extend_schema(responses={200: MessageSerializer})
    def get(self, request: Request, message_id: int) -> Response:
        """One message with its full text."""
        found = messages.fetch_messages(request_user(request).pk, [message_id])
        if not found:
            raise NotFound("No such message.", code="unknown_message")
        return Response(replies.messages_body(found)[0])

    @accepts(EditSerializer, responses={200: MessageSerializer, **errors(403, 409)})
    def patch(self, request: Request, values: dict[str, Any], message_id: int) -> Response:
        """Edit your message."""
        text = values["text"]
        edited = messages.edit_message(
            user_id=request_user(request).pk, message_id=message_id, text=text
        )
        return Response(message_payload(edited))

    @extend_schema(request=None, responses={204: None, **errors(403, 409)})
    def delete(self, request: Request, message_id: int) -> Response:
        """Delete your message (leaves a tombstone)."""
        messages.delete_message(user_id=request_user(request).pk, message_id=message_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReadView(ChatView):
    @accepts(ReadSerializer, responses={200: ReadStateSerializer})
    def post(self, request: Request, values: dict[str, Any], conversation_id: int) -> Response:
        """Mark read up to a message."""
        membership = sync.mark_read(
            user_id=request_user(request).pk,
            conversation_id=conversation_id,
            message_id=values["message_id"],
        )
        return Response(replies.read_state(membership))


class SyncView(ChatView):
    @extend_schema(parameters=[SyncQuerySerializer], responses={200: SyncPageSerializer})
    def get(self, request: Request) -> Response:
        """A page of the user's sync queue after a cursor (for clients without a socket)."""
        query = SyncQuerySerializer.parse(request)
        page = sync.sync_page(
            request_user(request).pk, after_seq=query["after"], limit=query["limit"]
        )
        return Response(replies.sync_page_body(page))
