"""What makes two usernames the same account, and which usernames are refused.

A username is stored as typed (after NFKC, so fullwidth ``alice`` is stored as plain
``alice``) and identified by its *key*: NFKC with case folding (``ALICE``, ``Alice`` and
fullwidth ``alice`` are one account, for sign-up and for log-in). Keys are unique.

Names that only *look* like another are refused too: every username also gets a
*skeleton*, each character replaced by one representative of its class of homoglyphs from
the Unicode confusables table (shipped by the maintained ``confusable_homoglyphs``
package), so ``al\u0131ce`` (dotless i), ``a1ice`` and an all-Cyrillic ``ace`` collide
with ``alice`` and ``ace``. Skeletons are unique as well. Names mixing scripts (``paypal``
with one Cyrillic ``a``) are refused even when no lookalike exists yet; a name in one
script other than Latin is fine.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import cache

from confusable_homoglyphs import confusables

from chatproject.text import raise_problem, unstorable_text_problem

MAX_LENGTH = 150
_ALLOWED = re.compile(r"^[\w.@+-]+\Z")
ALLOWED_CHARACTERS_MESSAGE = "Use letters, digits and @/./+/-/_ only."


def stored_form(raw: str) -> str:
    """The username as stored: stripped and NFKC-normalized, case kept."""
    return unicodedata.normalize("NFKC", raw.strip())


def key(raw: str) -> str:
    """The identity of a username: NFKC case-folded (NFKC again, as folding can undo it)."""
    return unicodedata.normalize("NFKC", stored_form(raw).casefold())


def skeleton(raw: str) -> str:
    """One representative per class of confusable characters, so lookalikes compare equal."""
    representative = _representatives()
    return "".join(representative.get(char, char) for char in key(raw))


def throttle_ident(raw: str) -> str:
    """A cache-safe identifier of the account ``raw`` names (any case, any width, any bytes),
    for counting log-in attempts per account."""
    return hashlib.sha256(key(raw).encode("utf-8", "surrogatepass")).hexdigest()


def username_problem(raw: str) -> str | None:
    """Why ``raw`` cannot be anyone's username, whoever else exists; or None."""
    problem = unstorable_text_problem(raw)
    if problem:
        return problem
    folded = key(raw)
    if not folded:
        return "This field may not be blank."
    if len(folded) > MAX_LENGTH or len(stored_form(raw)) > MAX_LENGTH:
        return f"At most {MAX_LENGTH} characters."
    if not _ALLOWED.match(stored_form(raw)) or not _ALLOWED.match(folded):
        # The folded form too: "İ" folds to "i" plus a combining dot, which is no letter.
        return ALLOWED_CHARACTERS_MESSAGE
    if confusables.is_mixed_script(folded):
        return "A username cannot mix scripts (for example Latin and Cyrillic letters)."
    return None


def validate_username(value: str) -> None:
    """Django validator form of :func:`username_problem` (model field, admin forms)."""
    raise_problem(username_problem(value), code="invalid")


@cache
def _representatives() -> dict[str, str]:
    """Character -> smallest character of its homoglyph class (union-find over the table)."""
    parent: dict[str, str] = {}

    def root(char: str) -> str:
        parent.setdefault(char, char)
        while parent[char] != char:
            parent[char] = parent[parent[char]]
            char = parent[char]
        return char

    table: dict[str, list[dict[str, str]]] = confusables.confusables_data
    for char, homoglyphs in table.items():
        if len(char) != 1:
            continue  # sequences (mostly Arabic presentation forms) are not single letters
        for glyph in homoglyphs:
            other = glyph["c"]
            if len(other) != 1:
                continue
            first, second = root(char), root(other)
            if first != second:
                parent[max(first, second)] = min(first, second)
    return {char: root(char) for char in parent}
