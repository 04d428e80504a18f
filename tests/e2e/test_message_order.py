"""Within a conversation, ids increase in commit order: every member's stream lists the
conversation's messages in id order, and a REST poller reading ``?after=<newest id seen>``
never skips one.

Two devices of one user (one over WebSocket, one over REST) and another member (both ways)
hammer one conversation at once. On the production configuration the senders sit on
different server processes (two ``serve`` commands of two workers each); embedded, the REST
threads and the WebSocket send batcher of one server process race each other.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import websockets

from .conftest import ServerProcess

pytestmark = pytest.mark.e2e
_names = itertools.count(1)
PASSWORD = "a long enough passphrase"
MESSAGES_PER_SENDER = 100
WS_FRAMES_PER_SECOND = 25


def _sign_up(server: ServerProcess) -> tuple[int, str, str]:
    name = f"order{next(_names)}"
    response = httpx.post(
        server.base_url + "/api/v1/auth/signup",
        json={"username": name, "password": PASSWORD, "device_name": "phone"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["user"]["id"], name, body["token"]


def _log_in(server: ServerProcess, username: str) -> str:
    response = httpx.post(
        server.base_url + "/api/v1/auth/login",
        json={"username": username, "password": PASSWORD, "device_name": "laptop"},
    )
    assert response.status_code in (200, 201), response.text
    token: str = response.json()["token"]
    return token


def _start_direct(server: ServerProcess, token: str, other_id: int) -> int:
    response = httpx.post(
        server.base_url + "/api/v1/conversations",
        json={"kind": "direct", "user_id": other_id},
        headers=_auth(token),
    )
    assert response.status_code == 201, response.text
    conversation_id: int = response.json()["id"]
    return conversation_id


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _send_over_rest(
    server: ServerProcess, token: str, conversation_id: int, label: str
) -> list[int]:
    sent: list[int] = []
    async with httpx.AsyncClient(base_url=server.base_url, headers=_auth(token)) as client:
        for number in range(MESSAGES_PER_SENDER):
            response = await client.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"client_msg_id": f"{label}-{number}", "text": f"{label} {number}"},
            )
            assert response.status_code == 201, response.text
            sent.append(response.json()["message"]["id"])
    return sent


async def _send_over_websocket(
    server: ServerProcess, token: str, conversation_id: int, label: str
) -> list[int]:
    sent: list[int] = []
    async with websockets.connect(
        server.ws_url, additional_headers=_auth(token), max_size=2**22
    ) as socket:

        async def next_frame() -> dict[str, Any]:
            frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(socket.recv(), 60))
            return frame

        assert (await next_frame())["type"] == "hello"
        await socket.send(orjson.dumps({"type": "sync", "after": 0}).decode())
        while (await next_frame())["type"] != "sync.page":
            pass
        # Three sends in flight at a time, so the server's send batcher has something to batch,
        # paced below the server's per-socket frame rate (30 a second) as a client must be.
        in_flight = 3
        started = asyncio.get_running_loop().time()
        for number in range(MESSAGES_PER_SENDER + in_flight):
            if number < MESSAGES_PER_SENDER:
                pause = started + number / WS_FRAMES_PER_SECOND - asyncio.get_running_loop().time()
                if pause > 0:
                    await asyncio.sleep(pause)
                frame = {
                    "type": "send",
                    "conversation_id": conversation_id,
                    "client_msg_id": f"{label}-{number}",
                    "text": f"{label} {number}",
                }
                await socket.send(orjson.dumps(frame).decode())
            if number < in_flight:
                continue
            while True:
                reply = await next_frame()
                assert reply["type"] != "error", reply
                if reply["type"] == "sent":
                    sent.append(reply["message_id"])
                    break
    return sent


async def _poll_after_newest(
    server: ServerProcess, token: str, conversation_id: int, done: asyncio.Event
) -> list[int]:
    """Read history as a client without a socket does: ``after`` = the newest id seen."""
    seen: list[int] = []
    newest = 0
    async with httpx.AsyncClient(base_url=server.base_url, headers=_auth(token)) as client:
        while True:
            finished = done.is_set()  # read before the page: the last poll sees everything
            response = await client.get(
                f"/api/v1/conversations/{conversation_id}/messages",
                params={"after": newest, "limit": 100},
            )
            assert response.status_code == 200, response.text
            page = [message["id"] for message in response.json()["results"]]
            seen.extend(reversed(page))  # pages are newest first
            newest = max([newest, *page])
            if finished and not page:
                return seen
            if not page:
                await asyncio.sleep(0.005)  # a poller's interval, not a wait for a result


def _conversation_stream(server: ServerProcess, token: str, conversation_id: int) -> list[int]:
    """The message ids of the conversation in the order of the user's sync queue."""
    ids: list[int] = []
    after = 0
    with httpx.Client(base_url=server.base_url, headers=_auth(token)) as client:
        while True:
            response = client.get("/api/v1/sync", params={"after": after, "limit": 500})
            assert response.status_code == 200, response.text
            body = response.json()
            for event in body["events"]:
                message = event.get("message", {})
                if event["type"] == "message.new" and message["conversation_id"] == conversation_id:
                    ids.append(message["id"])
            after = body["last_seq"]
            if not body["has_more"]:
                return ids


def _inversions(ids: list[int]) -> list[tuple[int, int]]:
    return [(a, b) for a, b in itertools.pairwise(ids) if b < a]


async def test_concurrent_rest_and_websocket_senders_keep_id_order(
    servers: Callable[[int], list[ServerProcess]],
) -> None:
    # Production: two serve commands of two workers each, sharing PostgreSQL and Redis.
    # Embedded: one process, where REST (a thread) and WebSocket (the send batcher) race.
    started = servers(2 if os.environ.get("REDIS_URL") else 1)
    first, second = started[0], started[-1]
    _alice_id, alice_name, alice_phone = _sign_up(first)
    bob_id, _bob_name, bob_token = _sign_up(second)
    alice_laptop = _log_in(second, alice_name)
    conversation_id = _start_direct(first, alice_phone, bob_id)

    senders = [
        _send_over_websocket(first, alice_phone, conversation_id, "alice-phone-ws"),
        _send_over_rest(second, alice_laptop, conversation_id, "alice-laptop-rest"),
        _send_over_websocket(second, bob_token, conversation_id, "bob-ws"),
        _send_over_rest(first, bob_token, conversation_id, "bob-rest"),
    ]
    done = asyncio.Event()
    poller = asyncio.create_task(_poll_after_newest(second, bob_token, conversation_id, done))
    try:
        sent_lists = await asyncio.gather(*senders)
    finally:
        done.set()
    polled = await poller

    sent = sorted(itertools.chain.from_iterable(sent_lists))
    assert len(sent) == len(set(sent)) == MESSAGES_PER_SENDER * len(senders)
    assert len(polled) == len(set(polled)), "the poller saw a message twice"
    skipped = sorted(set(sent) - set(polled))
    assert not skipped, f"the ?after= poller never saw {len(skipped)} of {len(sent)} messages"
    assert polled == sent, "history after a cursor came out of id order"
    for label, token in (("alice", alice_phone), ("bob", bob_token)):
        stream = _conversation_stream(first, token, conversation_id)
        assert sorted(stream) == sent, f"{label}'s stream is missing messages"
        assert not _inversions(stream), (
            f"{label}'s stream has {len(_inversions(stream))} later seqs with older ids"
        )
