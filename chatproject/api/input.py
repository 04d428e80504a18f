"""Reading a request's input through a serializer, the one way every view does it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    """``data`` (a request body or query) checked by ``serializer_class``.

    Invalid input raises DRF's ``ValidationError``, which the API answers with a 400 whose
    body lists each field's errors (chatproject/api/errors.py)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    values: dict[str, Any] = serializer.validated_data
    return values
