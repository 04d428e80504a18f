"""End to end: a user deactivated from ``manage.py shell`` (another OS process, sharing only
the database with the server) loses their open socket (issue 11, item 4)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Callable

import httpx
import orjson
import pytest
import websockets

from .conftest import ROOT, ServerProcess
from .test_live_server import Client, sign_up, start_direct

pytestmark = pytest.mark.e2e


def deactivate_in_another_process(env: dict[str, str], user_id: int) -> None:
    code = (
        "from accounts.models import User; "
        f"u = User.objects.get(pk={user_id}); u.is_active = False; u.save()"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
    )


async def closed_with(client: Client) -> tuple[int | None, list[str]]:
    """Read until the server closes: its close code and the error codes it sent first."""
    errors: list[str] = []
    while True:
        try:
            frame = await client.receive(timeout=15)
        except websockets.ConnectionClosed as closed:
            return (closed.rcvd.code if closed.rcvd else None), errors
        if frame["type"] == "error":
            errors.append(frame["code"])


async def test_users_deactivated_from_a_shell_cannot_send_and_are_disconnected(
    servers: Callable[[int], list[ServerProcess]], server_env: dict[str, str]
) -> None:
    server_env["PRESENCE_TICK"] = "3"  # the validity check runs on every tick
    (server,) = servers(1)
    alice_id, alice_token = sign_up(server)
    bob_id, bob_token = sign_up(server)
    conversation_id = start_direct(server, alice_token, bob_id)
    alice, bob = Client(server, alice_token), Client(server, bob_token)
    await alice.connect()
    await bob.connect()
    await alice.send(conversation_id, "while active", "a1")
    await bob.receive_live(1)

    # Alice sends right after her deactivation: refused at send time, or her socket was
    # already closed by a presence tick (tests/chat/test_revocation_checks.py checks each
    # path on its own). Either way, nothing is stored.
    await asyncio.to_thread(deactivate_in_another_process, server_env, alice_id)
    frame = {
        "type": "send",
        "conversation_id": conversation_id,
        "client_msg_id": "a2",
        "text": "after deactivation",
    }
    with contextlib.suppress(websockets.ConnectionClosed):
        await alice.socket.send(orjson.dumps(frame).decode())
    assert await closed_with(alice) == (4002, ["revoked"])
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        history = await http.get(
            f"/api/v1/conversations/{conversation_id}/messages",
            headers={"Authorization": f"Bearer {bob_token}"},
        )
    assert [m["text"] for m in history.json()["results"]] == ["while active"]

    # Bob only listens: the presence tick closes his socket.
    await asyncio.to_thread(deactivate_in_another_process, server_env, bob_id)
    assert await closed_with(bob) == (4002, ["revoked"])
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        refused = await http.get(
            "/api/v1/conversations", headers={"Authorization": f"Bearer {alice_token}"}
        )
    assert refused.status_code == 401
