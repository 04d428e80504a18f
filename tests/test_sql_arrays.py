"""Array literals for PostgreSQL parameters (chatproject/sql.py) read back exactly what
was given: message texts hold any character a user types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import connection

from chatproject import sql

pytestmark = pytest.mark.django_db

TRICKY_TEXTS = [
    "",
    "plain",
    'say "hi"',
    "back\\slash \\\\ and \\",
    "{braces},commas,{",
    "NULL",
    "null",
    " leading and trailing ",
    "it's 'quoted'",
    "émoji 😀 and 中文",
    "new\nline\ttab",
    "x" * 100_000,
]


def _round_trip(literal: str, cast: str) -> Any:
    if connection.vendor != "postgresql":
        pytest.skip("array literals are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{cast}[]", [literal])
        return cursor.fetchone()[0]


def test_texts_read_back_exactly_whatever_they_contain() -> None:
    assert _round_trip(sql.text_array(TRICKY_TEXTS), "text") == TRICKY_TEXTS


def test_ints_and_missing_ints_read_back_exactly() -> None:
    ids = [0, 1, -5, 2**63 - 1, 318_904_227_184_640_001]
    assert _round_trip(sql.int_array(ids), "bigint") == ids
    assert _round_trip(sql.nullable_int_array([7, None, 9]), "bigint") == [7, None, 9]
    assert _round_trip(sql.int_array([]), "bigint") == []


def test_times_keep_their_instant_and_microseconds() -> None:
    times = [
        datetime(2026, 12, 3, 14, 0, 0, 123_456, tzinfo=UTC),
        datetime(2026, 12, 3, 9, 30, 0, 1, tzinfo=timezone(timedelta(hours=-5))),
    ]
    assert _round_trip(sql.time_array(times), "timestamptz") == times


def test_values_that_would_not_mean_what_they_say_are_refused_before_the_database() -> None:
    with pytest.raises(TypeError):
        sql.int_array([1, True])  # a bool is an int to Python, not to the caller
    with pytest.raises(TypeError):
        sql.int_array([1, None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="naive"):
        sql.time_array([datetime(2026, 12, 3, 14, 0)])  # noqa: DTZ001 (the point of the test)
