"""What every statement of the Django-database store shares: batching and field lookups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Field, Model

# Both SQLite (SQLITE_MAX_VARIABLE_NUMBER = 32766 since 3.32) and PostgreSQL (65535) accept
# this many parameters in one statement; only bigger batches are split.
MAX_PARAMS_PER_STATEMENT = 30_000


def model_field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return field


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
