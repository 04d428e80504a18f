"""End to end: SIGTERM drains a server process (chatproject/lifecycle.py). Its clients are
told to reconnect elsewhere (an error frame ``server_draining``, then close 4012) while
one of them is sending; the registry stops naming it at once; it exits by itself, well
within ``DRAIN_TIMEOUT``; and on the next connection nothing acknowledged is lost or
doubled, every stream gap-free and in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from bench.chaos.services import wait_until

from .conftest import ServerProcess
from .test_live_server import Client, sign_up, start_direct
from .test_registry_live import best, port_of

pytestmark = pytest.mark.e2e
DRAIN_TIMEOUT = 20.0


class DrainedClient(Client):
    """Remembers the error frames it got and how the server closed its socket."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        super().__init__(server, token)
        self.errors: list[dict[str, Any]] = []

    @property
    def close_code(self) -> int | None:
        code: int | None = self.socket.close_code
        return code

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        frame = await super().receive(timeout)
        if frame["type"] == "error":
            self.errors.append(frame)
        return frame

    async def wait_closed(self) -> None:
        """Read until the server closes the socket (a client idling on a draining server)."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.receive(timeout=DRAIN_TIMEOUT)


async def send_until_closed(
    client: DrainedClient, conversation_id: int, acked: list[int], first_sent: asyncio.Event
) -> int:
    """Send one message after the other until the socket closes; the index of the first
    message that was not acknowledged."""
    for index in range(10_000):
        try:
            ack = await client.send(conversation_id, f"m{index}", f"c{index}")
        except ConnectionClosed:
            await client.wait_closed()  # frames that came before the close are still read
            return index
        acked.append(ack["message_id"])
        first_sent.set()
    raise AssertionError("the socket was never closed")


async def test_sigterm_sends_clients_elsewhere_and_loses_nothing(
    servers: Callable[[int], list[ServerProcess]], server_env: dict[str, str]
) -> None:
    several = bool(os.environ.get("REDIS_URL"))  # processes share state through Redis
    server_env.update(
        CHAT_SERVER_REGISTRY_PREFIX=f"e2e-{secrets.token_hex(4)}",
        CHAT_SERVER_HEARTBEAT="0.5",
        DRAIN_TIMEOUT=str(DRAIN_TIMEOUT),
    )
    started = servers(2 if several else 1)
    draining, other = started[0], started[-1]
    _, alice_token = sign_up(draining)
    bob_id, bob_token = sign_up(draining)
    conversation_id = start_direct(draining, alice_token, bob_id)
    alice, bob = DrainedClient(draining, alice_token), DrainedClient(draining, bob_token)
    await alice.connect()
    await bob.connect()
    if several:
        wait_until(lambda: best(other, alice_token)["server_id"] is not None, "registered")

    acked: list[int] = []
    first_sent = asyncio.Event()
    sender = asyncio.create_task(send_until_closed(alice, conversation_id, acked, first_sent))
    await asyncio.wait_for(first_sent.wait(), 10)
    assert draining.process is not None
    process = draining.process
    process.send_signal(signal.SIGTERM)
    signalled_at = time.monotonic()
    unacknowledged_from = await asyncio.wait_for(sender, DRAIN_TIMEOUT)
    await bob.wait_closed()

    # Both were told why, with the documented code, and the process went away by itself.
    for client in (alice, bob):
        assert client.close_code == 4012
        assert [error["code"] for error in client.errors] == ["server_draining"]
    await asyncio.to_thread(process.wait, DRAIN_TIMEOUT)
    assert process.returncode == 0
    assert time.monotonic() - signalled_at < DRAIN_TIMEOUT / 2  # it did not wait it out
    draining.process = None
    if several:  # the registry names only the process that stays
        for _ in range(10):
            assert port_of(best(other, alice_token)["ws_url"]) == other.port
    else:
        draining.start(migrate=False)

    # Alice reconnects and re-sends what had no `sent`; Bob catches up. Client.take fails
    # on any gap or repeat in a stream.
    await alice.connect(other)
    # (Answered ``duplicate`` with its original id if it was stored just before the close.)
    retried = await alice.send(conversation_id, "retry", f"c{unacknowledged_from}")
    acked.append(retried["message_id"])
    await bob.connect(other)
    assert bob.messages == acked
    assert len(set(acked)) == len(acked)
    await alice.close()
    await bob.close()
