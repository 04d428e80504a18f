"""Path converters shared by every app's URLconf.

Ids are 64-bit signed integers in every database. A path segment that is not in
``1..2**63-1`` cannot name anything: the converter refuses it, so the URL does not match
and the answer is the API's JSON 404 (``chatproject.api.errors.not_found``), instead of
the database driver failing to bind the number (a 500 on SQLite).
"""

from __future__ import annotations

from django.urls import register_converter

from chatproject.limits import MAX_ID


class IdConverter:
    """``<id:name>``: a database id, 1 to 2**63-1, as an ``int``."""

    regex = "[0-9]{1,20}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 0 < number <= MAX_ID:
            # ValueError tells Django's resolver "this segment does not match".
            raise ValueError(f"id out of range: {value}")
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
