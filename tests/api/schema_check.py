"""Validation of REST responses against the OpenAPI schema the server publishes.

tests/conftest.py runs every response the test suite's Django/DRF test clients receive under
``/api/v1/`` through :func:`check_response`, so a test fails as soon as a response differs
from /api/schema/ (an undocumented status, a missing or extra field, a wrong type).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound


def published_schema() -> dict[str, Any]:
    """The schema exactly as GET /api/schema/?format=json serves it."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    generator = SchemaGenerator()  # type: ignore[no-untyped-call]
    schema = generator.get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    document: dict[str, Any] = json.loads(OpenApiJsonRenderer().render(schema))
    return document


class _Request(DjangoOpenAPIRequest):
    """Only the response is checked: never read the request body (it may be one Django
    refuses to read, e.g. over DATA_UPLOAD_MAX_MEMORY_SIZE)."""

    @property
    def body(self) -> bytes:
        return b""


@cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(published_schema())


def check_response(request: HttpRequest, response: HttpResponseBase) -> None:
    """Raise AssertionError if ``response`` is not what the schema says ``request`` gets."""
    try:
        _openapi().validate_response(
            _Request(request),
            DjangoOpenAPIResponse(response),  # type: ignore[arg-type]
        )
    except (PathNotFound, OperationNotFound):
        # A URL or method the API does not have (a 404/405): nothing in the schema to check.
        return
    except Exception as error:
        details = "; ".join(str(e) for e in getattr(error, "schema_errors", ())) or repr(
            error.__cause__ or error
        )
        content = getattr(response, "content", b"")[:1000]
        raise AssertionError(
            f"{request.method} {request.get_full_path()[:200]} -> {response.status_code} "
            f"does not match /api/schema/: {error}: {details}\nbody: {content!r}"
        ) from error
