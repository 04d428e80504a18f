"""The rules every piece of user-typed text follows, for every transport.

- No text field may hold NUL or a lone surrogate: PostgreSQL cannot store either (a 500
  there) while SQLite stores them silently, so the same input would behave differently per
  database. DRF's ``CharField`` already refuses both; the WebSocket frame models and the
  services call :func:`unstorable_text_problem` so nothing else gets through.
- Text that is only whitespace and invisible characters (zero-width space, joiners, word
  joiner, BOM, soft hyphen, Hangul fillers: Unicode's Default_Ignorable_Code_Point and
  White_Space properties, plus controls) is blank: a message or a name needs something a
  reader can see.
- Names (display names, group names) also refuse control characters and the bidi controls
  (embeddings, overrides, isolates and marks), which would let a name reorder the text
  around it (U+202E before "evil" shows "live") wherever it is shown.

The checks return a problem sentence (or None) so each caller raises its own error type:
a Django ``ValidationError`` for serializers and model forms, a ``ValueError`` for pydantic,
a ``ServiceError`` with the documented ``code`` in services.
"""

from __future__ import annotations

import unicodedata

import regex
from django.core.exceptions import ValidationError

# Shown as nothing. Braille pattern blank is not Default_Ignorable but renders empty and is
# the usual way to make a "blank" name on chat services.
_INVISIBLE_ONLY = regex.compile(
    r"[\p{White_Space}\p{Default_Ignorable_Code_Point}\p{Cc}\N{BRAILLE PATTERN BLANK}]*"
)
_SURROGATE = regex.compile(r"\p{Cs}")
# Bidi_Control: ALM, LRM, RLM, LRE/RLE/PDF/LRO/RLO and LRI/RLI/FSI/PDI.
_BIDI_CONTROL = regex.compile(r"\p{Bidi_Control}")


def unstorable_text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in value:
        return "NUL characters are not allowed."
    if _SURROGATE.search(value):
        return "The text is not valid Unicode (it has a lone surrogate)."
    return None


def is_blank(value: str) -> bool:
    """True when nothing in ``value`` would be visible."""
    return _INVISIBLE_ONLY.fullmatch(value) is not None


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a display or group name, or None. Blank is the caller's
    business (an empty display name means "use the username"), but a name made only of
    invisible characters that is not empty is refused here."""
    problem = unstorable_text_problem(value)
    if problem:
        return problem
    if _BIDI_CONTROL.search(value):
        return "Names cannot contain bidirectional control characters (such as U+202E)."
    if any(unicodedata.category(char) == "Cc" for char in value):
        return "Names cannot contain control characters such as tabs or line breaks."
    if value and is_blank(value):
        return "A name needs at least one visible character."
    return None


def raise_problem(problem: str | None, *, code: str) -> None:
    """What a Django/DRF validator does with a ``*_problem`` answer: raise it as a
    ``ValidationError`` with ``code``, or nothing when there is no problem.

    Validators stay module-level functions calling this (not generated ones) so that
    migrations can name them."""
    if problem:
        raise ValidationError(problem, code=code)


def validate_name(value: str) -> None:
    """Django/DRF validator form of :func:`name_problem` (model fields and serializers)."""
    raise_problem(name_problem(value), code="invalid_name")


def validate_storable_text(value: str) -> None:
    """Django/DRF validator form of :func:`unstorable_text_problem`."""
    raise_problem(unstorable_text_problem(value), code="invalid_text")
