"""Create a workload's users, device tokens and conversations through the REST API.

Sign-ups run concurrently and are spread over all server processes. The relay has no
API: its population is made up here (tokens are the user ids) and handed to it at start;
so is the Channels tutorial's (``calibration_population``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import orjson
from websockets.sync.client import connect as sync_connect

from .population import Conversation, Device, Population

PASSWORD = "bench passphrase 4711"  # noqa: S105 (throwaway benchmark accounts)
CONCURRENCY = 32


class SetupError(RuntimeError):
    pass


async def _post(client: httpx.AsyncClient, url: str, body: object, token: str = "") -> object:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for attempt in range(5):
        response = await client.post(url, json=body, headers=headers)
        if response.status_code < 300:
            return response.json()
        if response.status_code == 429 or response.status_code >= 500:
            await asyncio.sleep(0.5 * (attempt + 1))
            continue
        break
    raise SetupError(f"POST {url}: {response.status_code} {response.text[:300]}")


@dataclass(frozen=True)
class Account:
    user_id: int
    username: str
    token: str


async def sign_up_accounts(base_urls: Sequence[str], count: int) -> list[Account]:
    """``count`` new users (one device token each), spread over the servers."""
    run = secrets.token_hex(3)
    limit = asyncio.Semaphore(CONCURRENCY)
    results: list[Account | None] = [None] * count

    async def one(client: httpx.AsyncClient, index: int) -> None:
        username = f"b{run}u{index}"
        async with limit:
            body = await _post(
                client,
                f"{base_urls[index % len(base_urls)]}/api/v1/auth/signup",
                {
                    "username": username,
                    "password": PASSWORD,
                    "device_name": "bench",
                    "platform": "other",
                },
            )
        if not isinstance(body, dict):
            raise SetupError(f"unexpected sign-up reply {body!r}")
        results[index] = Account(int(body["user"]["id"]), username, str(body["token"]))

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(one(client, index) for index in range(count)))
    return [account for account in results if account is not None]


async def log_in_devices(base_urls: Sequence[str], accounts: Sequence[Account]) -> list[str]:
    """One more device (a log-in, so a new token) for each account, in order."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(client: httpx.AsyncClient, index: int, account: Account) -> str:
        async with limit:
            body = await _post(
                client,
                f"{base_urls[index % len(base_urls)]}/api/v1/auth/login",
                {"username": account.username, "password": PASSWORD, "device_name": "bench"},
            )
        if not isinstance(body, dict):
            raise SetupError(f"unexpected log-in reply {body!r}")
        return str(body["token"])

    async with httpx.AsyncClient(timeout=60) as client:
        return list(
            await asyncio.gather(*(one(client, i, account) for i, account in enumerate(accounts)))
        )


async def _sign_up_all(base_urls: Sequence[str], count: int) -> list[tuple[int, str]]:
    """(user id, device token) for ``count`` new users."""
    accounts = await sign_up_accounts(base_urls, count)
    return [(account.user_id, account.token) for account in accounts]


async def create_conversations(
    base_urls: Sequence[str],
    users: Sequence[tuple[int, str]],
    groups: Sequence[Sequence[int]],
    *,
    direct: bool,
) -> list[Conversation]:
    """One conversation per entry of ``groups`` (indexes into ``users``), by its first member."""
    limit = asyncio.Semaphore(CONCURRENCY)
    created: list[Conversation | None] = [None] * len(groups)

    async def one(client: httpx.AsyncClient, position: int, members: Sequence[int]) -> None:
        owner_id, owner_token = users[members[0]]
        others = [users[index][0] for index in members[1:]]
        body: dict[str, object] = (
            {"kind": "direct", "user_id": others[0]}
            if direct
            else {"kind": "group", "name": f"bench {position}", "member_ids": others}
        )
        async with limit:
            reply = await _post(
                client,
                f"{base_urls[position % len(base_urls)]}/api/v1/conversations",
                body,
                owner_token,
            )
        if not isinstance(reply, dict):
            raise SetupError(f"unexpected reply {reply!r}")
        created[position] = Conversation(id=int(reply["id"]), member_ids=(owner_id, *others))

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(one(client, pos, members) for pos, members in enumerate(groups)))
    return [conversation for conversation in created if conversation is not None]


def chat_population(
    base_urls: Sequence[str],
    ws_urls: Sequence[str],
    *,
    users: int,
    group_size: int,
    senders_per_conversation: int | None = None,
) -> Population:
    """``users`` users, one device each, in conversations of ``group_size`` (2 = direct).

    ``group_size`` 0 creates no conversations (idle connections). Every member sends
    unless ``senders_per_conversation`` limits it.
    """
    created = asyncio.run(_sign_up_all(base_urls, users))
    memberships = _partition(users, group_size)
    conversations = (
        asyncio.run(create_conversations(base_urls, created, memberships, direct=group_size == 2))
        if memberships
        else []
    )
    return _population(created, memberships, conversations, ws_urls, senders_per_conversation)


def calibration_population(
    ws_urls: Sequence[str],
    *,
    users: int,
    group_size: int,
    senders_per_conversation: int | None = None,
) -> Population:
    created = [(index + 1, str(index + 1)) for index in range(users)]
    memberships = _partition(users, group_size)
    conversations = [
        Conversation(id=position + 1, member_ids=tuple(created[i][0] for i in members))
        for position, members in enumerate(memberships)
    ]
    with sync_connect(ws_urls[0], additional_headers={"Authorization": "Bearer 0"}) as ws:
        ws.recv()  # hello
        ws.send(
            orjson.dumps(
                {
                    "type": "bench.conversations",
                    "conversations": {str(c.id): list(c.member_ids) for c in conversations},
                }
            ).decode()
        )
        ws.recv()  # ok
    return _population(created, memberships, conversations, ws_urls, senders_per_conversation)


def _partition(users: int, group_size: int) -> list[list[int]]:
    if group_size < 2:
        return []
    return [
        list(range(start, start + group_size))
        for start in range(0, users - group_size + 1, group_size)
    ]


def _population(
    created: Sequence[tuple[int, str]],
    memberships: Sequence[Sequence[int]],
    conversations: Sequence[Conversation],
    ws_urls: Sequence[str],
    senders_per_conversation: int | None,
) -> Population:
    sends_to: dict[int, int] = {}
    for members, conversation in zip(memberships, conversations, strict=True):
        for rank, index in enumerate(members):
            if senders_per_conversation is None or rank < senders_per_conversation:
                sends_to[index] = conversation.id
    devices = [
        Device(
            index=index,
            user_id=user_id,
            token=token,
            ws_url=ws_urls[index % len(ws_urls)],
            conversation_id=sends_to.get(index),
        )
        for index, (user_id, token) in enumerate(created)
    ]
    return Population(
        devices=devices,
        conversations={conversation.id: conversation for conversation in conversations},
    )
