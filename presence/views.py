"""Presence REST endpoints: presence of a bounded list of users (for clients that poll) and
the user's own setting to hide their presence. Each view parses, calls presence.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_user
from chatproject.api.input import accepts
from chatproject.limits import MAX_ID

from . import services


class PresenceEntrySerializer(serializers.Serializer[services.PresencePayload]):
    user_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["online", "offline"], allow_null=True)
    last_active_at = serializers.DateTimeField(allow_null=True)


class PresenceListSerializer(serializers.Serializer[dict[str, object]]):
    results = PresenceEntrySerializer(many=True)


class PresenceSettingsSerializer(serializers.Serializer[dict[str, bool]]):
    hidden = serializers.BooleanField()


def _ids(raw: str) -> list[int]:
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    # Refuse an oversized list before parsing it (a query string can be long).
    if len(parts) > services.MAX_QUERY_USERS:
        raise services.TooManyUsers(
            f"Ask for at most {services.MAX_QUERY_USERS} users at a time; "
            f"this asked for {len(parts)}.",
            fields={"ids": [f"At most {services.MAX_QUERY_USERS} user ids."]},
        )
    try:
        ids = [int(part) for part in parts]
    except ValueError:
        raise ValidationError({"ids": ["Comma-separated user ids are required."]}) from None
    if not ids or not all(1 <= user_id <= MAX_ID for user_id in ids):
        raise ValidationError({"ids": ["Comma-separated user ids are required."]})
    return ids


class PresenceView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ids",
                {
                    "type": "array",
                    "items": {
                        "type": "integer",
                        "format": "int64",
                        "minimum": 1,
                        "maximum": MAX_ID,
                    },
                    "minItems": 1,
                    "maxItems": services.MAX_QUERY_USERS,
                },
                required=True,
                style="form",
                explode=False,
                description="Comma-separated user ids, at most 200.",
            )
        ],
        responses=PresenceListSerializer,
    )
    def get(self, request: Request) -> Response:
        ids = _ids(request.query_params.get("ids", ""))
        return Response({"results": services.presence_of(request_user(request).pk, ids)})


class PresenceSettingsView(APIView):
    @extend_schema(responses=PresenceSettingsSerializer)
    def get(self, request: Request) -> Response:
        return Response({"hidden": services.is_hidden(request_user(request).pk)})

    @accepts(PresenceSettingsSerializer, responses=PresenceSettingsSerializer)
    def patch(self, request: Request, values: dict[str, Any]) -> Response:
        hidden = services.set_hidden(request_user(request).pk, hidden=values["hidden"])
        return Response({"hidden": hidden})
