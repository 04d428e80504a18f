"""docs/protocol.md documents every frame defined in chat/protocol.py.

The document must have a ``### `type` `` section for every client and server frame type,
mention every field of every client frame model in that frame's section, list every
WebSocket close code the server uses, and list in each server frame's table exactly the
fields that frame has: those of its TypedDict (chat/frames.py; presence's and ``error`` in
chat/protocol.py), which every frame chat sends has, and those of the frames a real session
through the ASGI application receives.
"""

from __future__ import annotations

import re
import typing
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from channels.testing import WebsocketCommunicator
from pydantic import BaseModel

from accounts.models import Contact
from chat import frames as chat_frames
from chat import protocol
from chat.services import conversations
from chatproject.asgi import application
from presence.backends import get_backend as get_presence_backend

from .conftest import WsDevice

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
ARCHITECTURE = DOC.with_name("architecture.md")
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
    models: list[type[BaseModel]] = list(protocol.client_frame_models())
    assert models, "could not read the client frame models of chat.protocol"
    return models


def _frame_type(model: type[BaseModel]) -> str:
    (literal,) = typing.get_args(model.model_fields["type"].annotation)
    assert isinstance(literal, str)
    return literal


def test_protocol_doc_covers_every_frame_field_and_close_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    client = _sections(_part(text, "Client frames"))
    server = _sections(_part(text, "Server frames"))

    missing_client = [t for t in protocol.client_frame_types() if t not in client]
    assert not missing_client, f"client frames without a ### section: {missing_client}"
    missing_server = [t for t in protocol.server_frame_types() if t not in server]
    assert not missing_server, f"server frames without a ### section: {missing_server}"

    models = _client_frame_models()
    assert sorted(_frame_type(m) for m in models) == sorted(protocol.client_frame_types())
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


# --- server frames: the fields each frame really has, against the document's tables ---------

_FIELD_ROW = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


def _documented_fields(section: str) -> set[str]:
    """The fields named in the first column of a section's table(s)."""
    return set(_FIELD_ROW.findall(section))


def _object_table(server_part: str, title: str) -> str:
    """The table under ``**title**`` in the introduction of the server frames chapter."""
    start = server_part.index(f"**{title}**")
    end = server_part.find("\n\n**", start + 1)
    intro_end = server_part.find("\n### ", start)
    return server_part[start : min(e for e in (end, intro_end) if e != -1)]


def _typed_frames_of(values: Iterable[Any]) -> dict[str, set[str]]:
    """Frame type -> fields, for the TypedDicts with a ``type`` among ``values``."""
    typed: dict[str, set[str]] = {}
    for value in values:
        if isinstance(value, type) and typing.is_typeddict(value):
            hints = typing.get_type_hints(value)
            if "type" in hints:
                (literal,) = typing.get_args(hints["type"])
                typed[literal] = set(hints)
    return typed


def _typed_server_frames() -> dict[str, set[str]]:
    """Frame type -> fields, for the server frames with a TypedDict in chat.frames,
    chat.protocol (``error``) or registered by an app built on chat (presence's); every
    frame the server sends must have one."""
    typed = (
        _typed_frames_of(vars(protocol).values())
        | _typed_frames_of(vars(chat_frames).values())
        | _typed_frames_of(protocol.registered_server_frames())
    )
    untyped = sorted(set(protocol.server_frame_types()) - set(typed))
    assert not untyped, f"server frames without a TypedDict: {untyped}"
    return typed


def test_every_chat_server_frame_table_lists_exactly_its_typed_fields() -> None:
    """Without a session: each TypedDict of chat.frames, and each one registered by an app
    built on chat (presence's), against its frame's table (``seq`` aside: the envelope or
    the sync page puts it in front of stream frames)."""
    server_part = _part(DOC.read_text(encoding="utf-8"), "Server frames")
    sections = _sections(server_part)
    problems = []
    for frame_type, fields in sorted(
        (
            _typed_frames_of(vars(chat_frames).values())
            | _typed_frames_of(protocol.registered_server_frames())
        ).items()
    ):
        documented = _documented_fields(sections[frame_type]) - {"seq"}
        if fields - {"seq"} != documented:
            problems.append(
                f"{frame_type}: typed {sorted(fields)}, documented {sorted(documented)}"
            )
    conversation_table = _documented_fields(_object_table(server_part, "Conversation object"))
    if set(typing.get_type_hints(chat_frames.ConversationPayload)) != conversation_table:
        problems.append(f"Conversation object: documented {sorted(conversation_table)}")
    assert not problems, "\n".join(problems)


class _Capture:
    """Every frame the devices receive, by type; sync pages' events counted as their type."""

    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, frame: dict[str, Any]) -> None:
        self.frames[frame["type"]].append(frame)
        for event in frame.get("events", []) if frame["type"] == "sync.page" else []:
            self.frames[event["type"]].append(event)

    async def next(self, device: WsDevice, frame_type: str) -> dict[str, Any]:
        """Read ``device``'s frames (recording all) until one of ``frame_type`` comes."""
        while True:
            frame = await device.receive(timeout=5)
            self.add(frame)
            if frame["type"] == frame_type:
                return frame

    async def connect(self, device: WsDevice, *, after: int = 0) -> None:
        await device.connect(sync=False)
        self.add(device.hello)
        device.cursor = after
        while True:
            await device.send({"type": "sync", "after": device.cursor, "ref": "s"})
            page = await self.next(device, "sync.page")
            device.cursor = page["last_seq"]
            if not page["has_more"]:
                return

    def fields(self, frame_type: str) -> set[str]:
        return {name for frame in self.frames[frame_type] for name in frame}

    def nested(self, key: str) -> list[dict[str, Any]]:
        """Every object found under ``key`` (or in the list under ``key``) in any frame."""
        found: list[dict[str, Any]] = []
        for frames in self.frames.values():
            for frame in frames:
                value = frame.get(key)
                values = value if isinstance(value, list) else [value]
                found.extend(v for v in values if isinstance(v, dict))  # error's message: str
        return found


async def _capture_every_server_frame(ws_devices: Any, make_user: Any) -> _Capture:
    """A session between alice (two devices), bob and carol that makes the server send
    every frame type it has, including the optional fields (receipt kinds, read's ok,
    retry_after)."""
    alice, bob, carol = [await adb(make_user)() for _ in range(3)]
    await adb(Contact.objects.create)(owner=bob, contact=alice)  # bob watches alice
    direct, _ = await adb(conversations.get_or_create_direct)(alice, bob.pk)
    group = await adb(conversations.create_group)(alice, name="Team", member_ids_=[bob.pk])
    capture = _Capture()
    a1, a2, b1 = [await ws_devices(u, n) for u, n in ((alice, "a1"), (alice, "a2"), (bob, "b1"))]

    await capture.connect(b1)
    await b1.send({"type": "watch", "ref": "w"})
    await capture.next(b1, "presence.snapshot")
    await capture.connect(a1)
    await capture.connect(a2)
    await capture.next(b1, "presence")  # alice came online

    await a1.send({"type": "ping", "ref": "p"})
    await capture.next(a1, "pong")
    await a1.send(
        {
            "type": "send",
            "ref": "r",
            "conversation_id": direct.pk,
            "client_msg_id": "c-1",
            "text": "hi bob",
        }
    )
    sent = await capture.next(a1, "sent")
    await capture.next(a2, "message.new")
    await capture.next(b1, "message.new")
    await b1.send({"type": "ack", "seq": b1.cursor})
    await capture.next(a1, "receipt")  # delivered (after bob's ack is flushed)

    await a1.send({"type": "edit", "ref": "e", "message_id": sent["message_id"], "text": "hi!"})
    await capture.next(a1, "ok")
    await capture.next(b1, "message.edited")
    await b1.send(
        {
            "type": "read",
            "ref": "rd",
            "conversation_id": direct.pk,
            "message_id": sent["message_id"],
        }
    )
    await capture.next(b1, "ok")
    await capture.next(a1, "receipt")  # read
    await a1.send({"type": "fetch", "ref": "f", "message_ids": [sent["message_id"]]})
    await capture.next(a1, "messages")
    await a1.send({"type": "typing", "conversation_id": direct.pk})
    await capture.next(b1, "typing")
    await a1.send({"type": "delete", "ref": "d", "message_id": sent["message_id"]})
    await capture.next(b1, "message.deleted")

    await adb(conversations.rename_group)(alice, group.pk, "Team 2")
    await capture.next(b1, "conversation.updated")
    await adb(conversations.add_members)(alice, group.pk, [carol.pk])
    await capture.next(b1, "member.added")
    await adb(conversations.remove_member)(alice, group.pk, carol.pk)
    await capture.next(b1, "member.removed")

    await a2.send("not json")
    await capture.next(a2, "error")
    await a2.send({"type": "watch", "ref": "w1"})
    await capture.next(a2, "presence.snapshot")
    await a2.send({"type": "watch", "ref": "w2"})
    too_soon = await capture.next(a2, "error")
    assert "retry_after" in too_soon, too_soon

    await capture.connect(await ws_devices(bob, "b2"))  # bob's whole queue, replayed
    return capture


@pytest.mark.django_db(transaction=True)
async def test_protocol_doc_lists_exactly_the_fields_of_every_server_frame(
    ws_devices: Any, make_user: Any
) -> None:
    """Each server frame's table names every field the frame has (from its TypedDict in
    chat.protocol, and from the frames a real session sends), and no other; the message
    and conversation object tables likewise."""
    get_presence_backend().reset()  # no lease from an earlier test may hide a transition
    capture = await _capture_every_server_frame(ws_devices, make_user)
    server_part = _part(DOC.read_text(encoding="utf-8"), "Server frames")
    sections = _sections(server_part)
    typed = _typed_server_frames()

    problems = []
    never_seen = [t for t in protocol.server_frame_types() if not capture.frames[t]]
    assert not never_seen, f"the session did not produce: {never_seen}"
    for frame_type in protocol.server_frame_types():
        real = typed.get(frame_type, set()) | capture.fields(frame_type)
        documented = _documented_fields(sections[frame_type])
        if real - documented:
            problems.append(f"{frame_type}: undocumented {sorted(real - documented)}")
        if documented - real:
            problems.append(f"{frame_type}: documented but never sent {sorted(documented - real)}")

    objects = {
        "Message object": (
            set(typing.get_type_hints(chat_frames.MessagePayload)),
            capture.nested("message") + capture.nested("messages"),
        ),
        "Conversation object": (
            set(typing.get_type_hints(chat_frames.ConversationPayload)),
            capture.nested("conversation"),
        ),
    }
    for title, (typed_fields, found) in objects.items():
        assert found, f"no {title} was captured"
        real = typed_fields | {name for obj in found for name in obj}
        documented = _documented_fields(_object_table(server_part, title))
        if real - documented:
            problems.append(f"{title}: undocumented {sorted(real - documented)}")
        if documented - real:
            problems.append(f"{title}: documented but never sent {sorted(documented - real)}")

    snapshot_users = capture.nested("users")
    assert snapshot_users
    users_row = next(
        line for line in sections["presence.snapshot"].splitlines() if line.startswith("| `users`")
    )
    problems.extend(
        f"presence.snapshot users: undocumented {name}"
        for name in sorted({n for user in snapshot_users for n in user})
        if f"`{name}`" not in users_row
    )
    assert not problems, "\n".join(problems)


# --- statements of the document about connection behaviour, checked against the server -----


@pytest.mark.django_db(transaction=True)
async def test_frames_sent_before_hello_are_answered_after_it_in_order(
    ws_devices: Any, make_user: Any
) -> None:
    """docs/protocol.md, "The connection, step by step": nothing sent early is dropped."""
    device = await ws_devices(await adb(make_user)())
    device.communicator = WebsocketCommunicator(
        application, "/ws/", headers=[(b"authorization", f"Bearer {device.token}".encode())]
    )
    connected, _ = await device.communicator.connect()
    assert connected
    await device.send({"type": "ping", "ref": "early-1"})
    await device.send({"type": "sync", "after": 0, "ref": "early-2"})

    replies = [await device.receive() for _ in range(3)]

    assert [(r["type"], r.get("ref")) for r in replies] == [
        ("hello", None),
        ("pong", "early-1"),
        ("sync.page", "early-2"),
    ]
    said = _sentence(DOC.read_text(encoding="utf-8"), "Frames sent before `hello`")
    assert "not lost" in said, said
    assert "in order" in said, said


@pytest.mark.django_db(transaction=True)
async def test_flood_strikes_are_forgiven_once_the_client_slows_down(
    ws_devices: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/protocol.md, "Closing": the socket is closed after ABUSE_CLOSE_AFTER dropped
    frames *in a row*; a client that pauses until its burst is back starts again at zero."""
    from chat.connection import flood

    now = [1_000.0]
    # The flood bucket's clock only (not asyncio's): frozen, then moved on by hand.
    monkeypatch.setattr(flood, "time", SimpleNamespace(monotonic=lambda: now[0]))
    device = await ws_devices(await adb(make_user)())
    await device.connect(sync=False)

    async def burst(frames: int) -> list[str]:
        for index in range(frames):
            await device.send({"type": "ping", "ref": str(index)})
        return [(await device.receive())["type"] for _ in range(frames)]

    strikes = flood.ABUSE_CLOSE_AFTER - 1
    for _ in range(3):  # three times 49 strikes: more than 50 in the connection's life
        replies = await burst(int(flood.FRAME_BURST) + strikes)
        assert replies.count("error") == strikes
        now[0] += flood.FRAME_BURST / flood.FRAME_RATE_PER_SECOND  # the burst refills
    await device.send({"type": "ping", "ref": "still open"})
    assert (await device.receive())["ref"] == "still open"
    said = _sentence(_part(DOC.read_text(encoding="utf-8"), "Closing"), "The count of dropped")
    assert "forgiven" in said, said


_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


@pytest.mark.django_db(transaction=True)
def test_a_presence_transition_costs_the_queries_the_architecture_doc_says(
    make_user: Any, django_assert_num_queries: Any
) -> None:
    """docs/architecture.md, "Watchers": the number of queries per transition."""
    from presence import services as presence_services

    text = ARCHITECTURE.read_text(encoding="utf-8")
    said = re.search(r"\*\*Watchers\.\*\*.*?\((\w+) queries", text, re.DOTALL)
    assert said, "the Watchers paragraph gives no query count"
    alice, bob, carol = make_user(), make_user(), make_user()
    Contact.objects.create(owner=bob, contact=alice)
    conversations.get_or_create_direct(alice, carol.pk)
    get_presence_backend().reset()

    with django_assert_num_queries(_NUMBERS[said.group(1)]):
        presence_services.connection_opened(user_id=alice.pk, member="1/doc-test")


def _sentence(text: str, start: str) -> str:
    """The sentence of ``text`` that starts with ``start`` (up to its full stop)."""
    begin = text.index(start)
    return " ".join(text[begin : text.index(".", begin + len(start)) + 1].split())
