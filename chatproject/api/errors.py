"""One error body for the whole REST API.

Every 4xx/5xx answer from ``/api/`` looks like::

    {"error": {"code": "validation_error", "message": "…", "fields": {"username": ["…"]}}}

``code`` is stable and machine-readable; ``message`` is for people; ``fields`` maps a
request field to its problems (empty when the error is not about one field).
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from chatproject.errors import RateLimited, ServiceError

_CODES_BY_CLASS: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def error_body(
    code: str, message: str, fields: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten_fields(value, name))
        return flat
    if isinstance(detail, list) and detail and all(not isinstance(d, (dict, list)) for d in detail):
        return {prefix or "non_field_errors": [str(d) for d in detail]}
    if isinstance(detail, list):
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten_fields(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "non_field_errors": [str(detail)]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return Response(
            error_body(exc.code, exc.message, {k: list(v) for k, v in exc.fields.items()}),
            status=exc.status,
            headers=headers,
        )
    if isinstance(exc, RequestDataTooBig):
        # Raised by Django while DRF reads request.body; nothing has been written yet.
        return Response(
            error_body("request_too_large", "The request body is too large."), status=413
        )
    if isinstance(exc, TooManyFieldsSent):
        return Response(
            error_body("malformed_request", "The request has too many fields."), status=400
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response

    code = next((c for cls, c in _CODES_BY_CLASS.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_fields(exc.detail)
        non_field = fields.get("non_field_errors")
        message = (
            non_field[0] if non_field and len(fields) == 1 else "The request has invalid fields."
        )
        response.data = error_body(code, message, fields)
    else:
        response.data = error_body(
            code, str(exc.detail) if not isinstance(exc.detail, (list, dict)) else ""
        )
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        response.data["error"]["message"] = "Too many requests. Try again later."
    return response


# --- Django's error views (handler400/403/404/500 in chatproject/urls.py) ---------------------
# They run when no API view produced the answer: no URL matched (an unknown path, or an id
# the <id:...> converter refuses), Django refused the request before routing, or a view
# raised something unexpected. Under /api/ clients get the same JSON body as from the views.


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("malformed_request", "Bad request."), status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("forbidden", "Not allowed."), status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        # The exception is logged by Django (django.request); the outcome is unknown.
        return JsonResponse(
            error_body("server_error", "Unexpected server error; try again."), status=500
        )
    return defaults.server_error(request)
