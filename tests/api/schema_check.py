"""Validation of REST responses against the OpenAPI schema the server publishes.

tests/conftest.py runs every response under ``/api/v1/`` that the test suite receives, from
the Django/DRF test clients (:func:`check_response`) and from live servers through httpx
(:func:`check_httpx_response`), so a test fails as soon as a response differs from
/api/schema/ (an undocumented status, a missing field, a wrong type).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import httpx
from django.http import HttpRequest, HttpResponseBase
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse


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
    _check(
        _Request(request),
        DjangoOpenAPIResponse(response),  # type: ignore[arg-type]
        f"{request.method} {request.get_full_path()[:200]}",
    )


def check_httpx_response(response: httpx.Response) -> None:
    """The same for a response from a live server (only /api/v1/ URLs are checked)."""
    url = response.request.url
    if not url.path.startswith("/api/v1/"):
        return
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return  # a streamed response the test reads itself
    request = MockRequest(
        f"{url.scheme}://{url.netloc.decode()}",
        response.request.method,
        url.path,
        args=dict(parse_qsl(url.query.decode(), keep_blank_values=True)),
    )
    checked = MockResponse(
        content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("content-type", ""),
    )
    _check(request, checked, f"{response.request.method} {str(url)[:200]}")


def _check(request: Any, response: Any, label: str) -> None:
    try:
        _openapi().validate_response(request, response)
    except (PathNotFound, OperationNotFound):
        # A URL or method the API does not have (a 404/405): nothing in the schema to check.
        return
    except Exception as error:
        details = "; ".join(str(e) for e in getattr(error, "schema_errors", ())) or repr(
            error.__cause__ or error
        )
        raise AssertionError(
            f"{label} -> {response.status_code} does not match /api/schema/: "
            f"{error}: {details}\nbody: {response.data[:1000]!r}"
        ) from error
