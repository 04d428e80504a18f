"""The frame router: each frame to its handler, each kind of failure to its error frame,
with the client's ref."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async as adb

from accounts.models import User
from accounts.revocation import DeviceRevoked
from chat import protocol
from chat.connection.acks import AckFlusher
from chat.connection.extensions import ConnectionExtension, Extension
from chat.connection.router import FrameRouter
from chat.connection.stream import DeviceStream
from chat.services.conversations import UnknownConversation
from chatproject.errors import RateLimited

from .conftest import Written, device_of

pytestmark = pytest.mark.django_db(transaction=True)


class Host(Written):
    def __init__(self, user_id: int, device_id: int) -> None:
        super().__init__()
        self.user_id = user_id
        self.device_id = device_id
        self.closed_with: list[int] = []

    def close(self, code: int) -> None:
        self.closed_with.append(code)


class Failing:
    """An extension that claims ``ping`` and fails the way it is told to."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def touch(self) -> None: ...

    def accepts(self, frame: bytes) -> bool:
        return True

    async def handle(self, frame: protocol.BaseClientFrame) -> None:
        raise self.error


async def router_for(
    make_user: Callable[..., User], failing: Failing | None = None
) -> tuple[Host, FrameRouter]:
    user = await adb(make_user)()
    host = Host(user.pk, await device_of(user))
    stream = DeviceStream(user_id=user.pk, newest_seq=0, write=host, on_live_write=lambda s: None)
    acks = AckFlusher(user_id=user.pk, device_id=host.device_id, delivered_seq=0)
    claims: list[tuple[Extension, ConnectionExtension]] = []
    if failing is not None:
        claims.append((Extension("failing", lambda _host: failing, frozenset({"ping"})), failing))
    return host, FrameRouter(host, stream=stream, acks=acks, extensions=claims)


async def answer(router: FrameRouter, host: Host, frame: dict[str, Any] | str) -> dict[str, Any]:
    """The last frame written after routing ``frame``."""
    await router.route(frame if isinstance(frame, str) else orjson.dumps(frame).decode())
    return host.frames[-1]


async def test_frames_that_do_not_parse_get_the_documented_errors(
    make_user: Callable[..., User],
) -> None:
    host, router = await router_for(make_user)
    send = {"type": "send", "ref": "r2", "conversation_id": 0, "client_msg_id": "c", "text": "x"}
    cases: list[tuple[dict[str, Any] | str, str, str, str | None]] = [
        ("not json", "malformed_frame", "The frame is not valid JSON.", None),
        ("[1]", "malformed_frame", "A frame must be a JSON object.", None),
        (
            {"type": "nope", "ref": "r1"},
            "unknown_frame_type",
            "Frame type must be one of: "
            "send, sync, ack, read, edit, delete, fetch, ping, watch, typing.",
            "r1",
        ),
        (
            send,
            "invalid_frame",
            "conversation_id: Input should be greater than or equal to 1",
            "r2",
        ),
        (
            {"type": "ping", "extra": 1},
            "invalid_frame",
            "extra: Extra inputs are not permitted",
            None,
        ),
    ]
    for frame, code, message, ref in cases:
        assert await answer(router, host, frame) == {
            "type": "error",
            "code": code,
            "message": message,
            "ref": ref,
        }


async def test_each_failure_kind_becomes_its_error_frame_with_the_ref(
    make_user: Callable[..., User], caplog: pytest.LogCaptureFixture
) -> None:
    host, router = await router_for(make_user)
    read = {"type": "read", "ref": "r3", "conversation_id": 10**6, "message_id": 1}
    unknown = await answer(router, host, read)
    assert (unknown["code"], unknown["ref"]) == (UnknownConversation.code, "r3")

    limited = Failing(RateLimited("Slow down.", retry_after=2.5))
    host, router = await router_for(make_user, limited)
    assert await answer(router, host, {"type": "ping", "ref": "p1"}) == {
        "type": "error",
        "code": "rate_limited",
        "message": "Slow down.",
        "ref": "p1",
        "retry_after": 2.5,
    }
    assert host.closed_with == []

    host, router = await router_for(make_user, Failing(DeviceRevoked("Logged out.")))
    revoked = await answer(router, host, {"type": "ping", "ref": "p2"})
    assert (revoked["code"], revoked["ref"]) == ("revoked", "p2")
    assert host.closed_with == [protocol.CLOSE_REVOKED]

    host, router = await router_for(make_user, Failing(KeyError("bug")))
    broken = await answer(router, host, {"type": "ping", "ref": "p3"})
    assert (broken["code"], broken["ref"]) == ("server_error", "p3")
    assert "ping frame failed" in caplog.text
    assert host.closed_with == []


async def test_chat_frames_reach_their_handlers(make_user: Callable[..., User]) -> None:
    host, router = await router_for(make_user)
    assert await answer(router, host, {"type": "ping", "ref": "p"}) == {"type": "pong", "ref": "p"}
    page = await answer(router, host, {"type": "sync", "ref": "s"})
    assert (page["type"], page["ref"], page["has_more"]) == ("sync.page", "s", False)
