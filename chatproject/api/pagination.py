"""Pagination for list endpoints that are not time-ordered streams."""

from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.views import APIView


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
