"""Query parameters read with serializers, as request bodies are."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request


class QuerySerializer(serializers.Serializer[Any]):
    """A view's query parameters. An empty value (``?limit=``) counts as absent, as it
    always has; anything else out of bounds is a 400 ``validation_error`` naming it."""

    @classmethod
    def parse(cls, request: Request, **kwargs: Any) -> dict[str, Any]:
        given = {name: value for name, value in request.query_params.items() if value != ""}
        query = cls(data=given, **kwargs)
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)
