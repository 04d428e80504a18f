"""docs/protocol.md documents every frame defined in chat/protocol.py.

The document must have a ``### `type` `` section for every client and server frame type,
mention every field of every client frame model in that frame's section, and list every
WebSocket close code the server uses.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from chat import protocol

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
_HEADING = re.compile(r"^### `([^`]+)`[ \t]*$", re.MULTILINE)


def _part(text: str, title: str) -> str:
    """The text of the ``## title`` chapter, up to the next ``## `` heading."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _sections(text: str) -> dict[str, str]:
    """Frame type -> text of its ``### `type` `` section (up to the next heading)."""
    matches = list(_HEADING.finditer(text))
    sections: dict[str, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        sections.setdefault(match.group(1), text[match.end() : end])
    return sections


def _client_frame_models() -> list[type[BaseModel]]:
    union = typing.get_args(protocol.ClientFrame)[0]
    models = [member for member in typing.get_args(union) if issubclass(member, BaseModel)]
    assert models, "could not read the members of chat.protocol.ClientFrame"
    return models


def _frame_type(model: type[BaseModel]) -> str:
    (literal,) = typing.get_args(model.model_fields["type"].annotation)
    assert isinstance(literal, str)
    return literal


def test_protocol_doc_covers_every_frame_field_and_close_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    client = _sections(_part(text, "Client frames"))
    server = _sections(_part(text, "Server frames"))

    missing_client = [t for t in protocol.CLIENT_FRAME_TYPES if t not in client]
    assert not missing_client, f"client frames without a ### section: {missing_client}"
    missing_server = [t for t in protocol.SERVER_FRAME_TYPES if t not in server]
    assert not missing_server, f"server frames without a ### section: {missing_server}"

    models = _client_frame_models()
    assert sorted(_frame_type(m) for m in models) == sorted(protocol.CLIENT_FRAME_TYPES)
    for model in models:
        section = client[_frame_type(model)]
        undocumented = [name for name in model.model_fields if f"`{name}`" not in section]
        assert not undocumented, f"{model.__name__} fields not in its section: {undocumented}"

    close_codes = {
        name: value
        for name, value in vars(protocol).items()
        if name.startswith("CLOSE_") and isinstance(value, int)
    }
    assert close_codes, "no CLOSE_* constants found in chat.protocol"
    closing = _part(text, "Closing")
    for name, code in close_codes.items():
        assert str(code) in closing, f"close code {name} = {code} is not in the Closing section"
