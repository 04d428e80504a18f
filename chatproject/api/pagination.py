"""Pagination for list endpoints that are not time-ordered streams."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatproject.api.query import QuerySerializer
from chatproject.limits import MAX_ID


class DefaultPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """DRF's page, with ``next``/``previous`` nullable the OpenAPI 3.1 way (the schema is
        3.1; DRF writes 3.0's ``nullable``, which 3.1 ignores)."""
        page = super().get_paginated_response_schema(schema)
        for link in ("next", "previous"):
            field = page["properties"][link]
            field.pop("nullable", None)
            field["type"] = ["string", "null"]
        page["required"] = ["count", "next", "previous", "results"]
        return page

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"At most this many results (default {self.default_limit}; "
                    f"larger values count as {self.max_limit})."
                )
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_limit,
                    "default": self.default_limit,
                }
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 0, "default": 0}
        return parameters


class _PageQuerySerializer(QuerySerializer):
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_ID)

    def __init__(self, *args: Any, default_limit: int, max_limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["limit"] = serializers.IntegerField(
            required=False, default=default_limit, min_value=1, max_value=max_limit
        )


class HasMorePagination(LimitOffsetPagination):
    """Limit/offset pages answered as ``{"results": [...], "has_more": bool}``: one query
    for ``limit + 1`` rows and no COUNT (a client pages on while ``has_more``). A limit or
    offset out of bounds is a 400 ``validation_error``, not clamped."""

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        query = _PageQuerySerializer.parse(
            request, default_limit=self.default_limit, max_limit=self.max_limit
        )
        self.limit, self.offset = query["limit"], query["offset"]
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        self.has_more = len(rows) > self.limit
        return rows[: self.limit]

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "has_more": self.has_more})
