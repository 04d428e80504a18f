"""Reading a request's input through a serializer, the one way every view does it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request

P = ParamSpec("P")
# A view method taking the validated body after the request, and the same method as
# Django calls it (the view, the request, the URL's arguments).
BodyHandler = Callable[Concatenate[Any, Request, dict[str, Any], P], Any]
Handler = Callable[Concatenate[Any, Request, P], Any]


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    """``data`` (a request body or query) checked by ``serializer_class``.

    Invalid input raises DRF's ``ValidationError``, which the API answers with a 400 whose
    body lists each field's errors (chatproject/api/errors.py)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    values: dict[str, Any] = serializer.validated_data
    return values


def accepts(
    serializer_class: type[serializers.Serializer[Any]], **schema: Any
) -> Callable[[BodyHandler[P]], Handler[P]]:
    """Declares a view method's request body once: the OpenAPI schema documents
    ``serializer_class`` (with ``schema``'s other ``extend_schema`` arguments) and the
    method is called with the body it validated, so the two cannot name different
    serializers."""

    def decorate(method: BodyHandler[P]) -> Handler[P]:
        @functools.wraps(method)
        def with_body(view: Any, request: Request, /, *args: P.args, **kwargs: P.kwargs) -> Any:
            return method(view, request, validated(serializer_class, request.data), *args, **kwargs)

        documented: Handler[P] = extend_schema(request=serializer_class, **schema)(with_body)
        return documented

    return decorate
