"""What the OpenAPI schema says beyond what drf-spectacular infers from the views.

- ``ERROR_SCHEMA``, the documented error body (chatproject/api/errors.py).
- :func:`errors`, the error responses a view's services can produce, for ``extend_schema``.
- :func:`add_common_error_responses` (a postprocessing hook), the errors every operation of a
  kind can produce whatever the view: 400 for a body or query it cannot parse, 401/403 when
  credentials are missing or a session's CSRF token is, 404 for ids in the path (unknown, or
  out of 64-bit range), 406, 413, 415, 429 on throttled endpoints, and
  500 (which has the same body).
- :func:`id_parameter` / :func:`integer_parameter`: parameters with their ranges.
- :class:`DocstringSchema`, an operation's summary and description taken from its view
  method's docstring, so a view documents itself once for readers of the code and of the API.

tests/conftest.py checks every response the test suite receives against the result, and
tests/api runs schemathesis and a generated client against a live server.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from chatproject.limits import MAX_ID

ERROR_DESCRIPTIONS = {
    400: "Invalid request (`validation_error`, `malformed_request` or a specific code).",
    401: "Missing, bad, revoked or expired credentials, or wrong password.",
    403: "Not allowed (for a browser session also: missing CSRF token).",
    404: "Unknown id, or one you have no access to.",
    406: "The `Accept` header asks for a format the API does not produce.",
    409: "Conflicts with the current state.",
    413: "Body over 1 MiB, or text over 99,999 characters.",
    415: "Body not `application/json` (or form data).",
    429: "Too many requests; `Retry-After` says when to try again.",
    500: "Unexpected server failure (a bug; logged on the server). The outcome is unknown.",
}


# The documented error body (chatproject/api/errors.py.error_body), as the schema component
# "Error" that every error response refers to.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, machine-readable (docs/protocol.md, Errors).",
                },
                "message": {"type": "string", "description": "For people."},
                "fields": {
                    "type": "object",
                    "description": "Request field (nested: dotted) to its problems; "
                    "empty when the error is not about a field.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """``responses={200: X, **errors(403, 409)}``: error answers a view's services give."""
    return {
        code: OpenApiResponse(_ERROR_REF, description=ERROR_DESCRIPTIONS[code]) for code in statuses
    }


def integer_parameter(
    name: str, *, minimum: int = 0, maximum: int = MAX_ID, default: int | None = None, **kw: Any
) -> OpenApiParameter:
    schema: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": minimum}
    schema["maximum"] = maximum
    if default is not None:
        schema["default"] = default
    return OpenApiParameter(name, schema, **kw)


def id_parameter(name: str, description: str = "") -> OpenApiParameter:
    """An id in the path: 1 to 2**63-1 (chatproject/converters.py)."""
    return integer_parameter(
        name, minimum=1, location=OpenApiParameter.PATH, description=description
    )


class DocstringSchema(AutoSchema):
    """The first paragraph of a view method's docstring is its operation's summary (without
    the closing full stop); the rest, or else the view class's docstring, its description."""

    def _method_docstring(self) -> tuple[str, str]:
        method = getattr(self.view, getattr(self.view, "action", None) or self.method.lower())
        first, _, rest = get_doc(method).partition("\n\n")
        return " ".join(first.split()).removesuffix("."), rest.strip()

    def get_summary(self) -> str | None:
        return self._method_docstring()[0] or None

    # drf-spectacular's own signature, narrower than DRF's inspector it derives from.
    def get_description(self) -> str:  # type: ignore[override]
        _, rest = self._method_docstring()
        return rest or get_doc(type(self.view))


_UNSAFE = {"post", "put", "patch", "delete"}


def _error_ref(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": _ERROR_REF}},
    }


def add_common_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _UNSAFE | {"get"}:
                continue
            parameters = operation.get("parameters", [])
            statuses = {406, 500}
            if "requestBody" in operation:
                statuses |= {400, 413, 415}
            if any(p["in"] == "query" for p in parameters):
                statuses.add(400)
            if any(p["in"] == "path" for p in parameters):
                statuses.add(404)
            # Operations open to anyone list an empty security requirement ({}).
            if {} not in operation.get("security", [{}]):
                statuses.add(401)
                if method in _UNSAFE:
                    statuses.add(403)
            if (method, path) in _THROTTLED:
                statuses.add(429)
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                responses.setdefault(str(status), _error_ref(status))
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    return result


# Throttled by address/username (accounts/throttles.py) or by send rate (chat/ratelimit.py).
_THROTTLED = {
    ("post", "/api/v1/auth/signup"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/conversations/{conversation_id}/messages"),
}
