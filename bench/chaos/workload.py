"""The fault-injection workload: users, devices and conversations, kept busy by real clients.

    workload = Workload(http_urls, ws_urls, users=6, devices_per_user=2, groups=2, rate=20)
    await workload.start()          # sign-ups over REST, every device connected and live
    ...                             # faults; schedule.run() calls workload.reconnect_all()
    settled = await workload.settle(timeout=30)   # stops new sends, waits for delivery
    history = await workload.read_history()       # or history_from_database(dsn, ids)
    await workload.take_offline(1)                # so that someone must show offline
    presence = await check_presence(workload.read_presence, workload.presence_truth())
    await workload.stop()
    result = check(workload.ledger, windows=..., history=history, presence=presence)

Every user has a direct conversation with the next user (in a ring) and ``groups`` groups
of ``group_size`` members; each user has ``devices_per_user`` devices (one sign-up, then
log-ins). ``rate`` new messages per second in total go, at random (seeded), from a device
to one of its user's conversations. Times are ``time.monotonic()`` seconds.

The last ``push_users`` users are phones in a pocket: their devices never open a socket
and each registers a Web Push subscription with ``push_service`` (the cluster's local
push receiver) instead, so every message to their conversations is pushed; ``pushes()``
is what each subscription received, for the checker's "never pushed twice".

The servers must allow what one load generator does: ``THROTTLE_SIGNUP`` and
``THROTTLE_LOGIN`` high (all sign-ups come from one address) and, for rates above
``SEND_RATE_LIMIT_PER_10S`` / 10 per user, a higher send limit. ``reconnect_all()`` acts
when called (it returns a future that is already done, so it may be awaited or not).
``history_from_database`` blocks: call it in a thread from the event loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from bench.population import Conversation
from bench.push_receivers import PushServices
from bench.setup_api import Account, create_conversations, log_in_devices, sign_up_accounts

from .checker import StoredMessage
from .checker import push_missing as check_push_missing
from .clients import ClientSettings, DeviceAccount, DeviceClient, Discovery, DropFault
from .ledger import ChaosLedger

HISTORY_PAGE = 100
PRESENCE_BATCH = 200


class Workload:
    def __init__(
        self,
        http_urls: Sequence[str],
        ws_urls: Sequence[str],
        *,
        users: int = 6,
        devices_per_user: int = 2,
        groups: int = 1,
        group_size: int = 3,
        rate: float = 10.0,
        seed: int = 0,
        settings: ClientSettings | None = None,
        fault: DropFault | None = None,
        push_users: int = 0,
        push_service: PushServices | None = None,
    ) -> None:
        if users < 2 or group_size > users:
            raise ValueError("need at least 2 users and groups no larger than the users")
        if push_users and (push_service is None or push_users > users - 2):
            raise ValueError("push users need a push service and at least 2 other users")
        self.http_urls = list(http_urls)
        self.ws_urls = list(ws_urls)
        self.users = users
        self.devices_per_user = devices_per_user
        self.groups = groups
        self.group_size = group_size
        self.rate = rate
        self.seed = seed
        self.settings = settings or ClientSettings()
        self.discovery = Discovery()
        self.fault = fault
        self.push_users = push_users
        self.push_service = push_service
        self.rng = random.Random(seed)
        self.ledger = ChaosLedger()
        self.clients: list[DeviceClient] = []
        self.accounts: list[Account] = []
        self.sending = False
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle --------------------------------------------------------------------
    async def start(self, live_timeout: float = 60.0) -> None:
        """Create everything over REST, connect every device, wait until all are live,
        then start sending."""
        self.accounts = await sign_up_accounts(self.http_urls, self.users)
        tokens = [[account.token] for account in self.accounts]
        for _ in range(self.devices_per_user - 1):
            more = await log_in_devices(self.http_urls, self.accounts)
            for held, token in zip(tokens, more, strict=True):
                held.append(token)
        conversations = await self._create_conversations()
        for conversation in conversations:
            self.ledger.members[conversation.id] = conversation.member_ids
        connected = len(self.accounts) - self.push_users
        await self._register_pushes(self.accounts[connected:], tokens[connected:])
        for user_index, account in enumerate(self.accounts[:connected]):
            joined = tuple(c.id for c in conversations if account.user_id in c.member_ids)
            for device_index, token in enumerate(tokens[user_index]):
                device = DeviceAccount(
                    f"u{account.user_id}d{device_index}", account.user_id, token, joined
                )
                self.clients.append(
                    DeviceClient(
                        device,
                        self.ws_urls,
                        self.ledger,
                        settings=self.settings,
                        fault=self.fault,
                        seed=self.seed * 1000 + len(self.clients),
                        discovery=self.discovery,
                    )
                )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(client.run()) for client in self.clients]
        if not await self.wait_for(self.all_live, live_timeout):
            raise TimeoutError(f"not every device was live within {live_timeout} s")
        self.sending = True
        self._tasks.append(loop.create_task(self._send_forever()))

    async def _create_conversations(self) -> list[Conversation]:
        pairs = [[index, (index + 1) % self.users] for index in range(self.users)]
        if self.users == 2:
            pairs = pairs[:1]
        groups = [
            [(start * self.group_size + offset) % self.users for offset in range(self.group_size)]
            for start in range(self.groups)
        ]
        users = [(account.user_id, account.token) for account in self.accounts]
        direct = await create_conversations(self.http_urls, users, pairs, direct=True)
        grouped = await create_conversations(self.http_urls, users, groups, direct=False)
        return [*direct, *grouped]

    async def _register_pushes(
        self, accounts: Sequence[Account], tokens: Sequence[Sequence[str]]
    ) -> None:
        """One Web Push subscription per device of each push user, registered over REST."""
        if self.push_service is None:
            return
        async with httpx.AsyncClient(timeout=30) as http:
            for account, held in zip(accounts, tokens, strict=True):
                for device_index, token in enumerate(held):
                    name = f"u{account.user_id}d{device_index}"
                    subscription = self.push_service.new_subscription(name)
                    body = {"kind": "webpush", "subscription": subscription.as_json()}
                    response = await http.post(
                        self.http_urls[0] + "/api/v1/push/registrations",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    response.raise_for_status()
                    self.ledger.push_owners[name] = account.user_id

    def pushes(self) -> dict[str, list[int]]:
        """Push address -> the message ids of the message pushes it received, in order."""
        received: dict[str, list[int]] = {name: [] for name in self.ledger.push_owners}
        for push in self.push_service.pushes() if self.push_service else []:
            if push.payload.get("type") == "message" and push.target in received:
                received[push.target].append(int(push.payload["message_id"]))
        return received

    def pushes_arrived(self) -> bool:
        """Every push address received every acknowledged message it is owed."""
        return not check_push_missing(self.ledger, self.pushes())

    async def _send_forever(self) -> None:
        """Open loop: one send every 1/rate seconds, due times fixed in advance."""
        interval = 1.0 / self.rate
        next_due = time.monotonic()
        while self.sending:
            client = self.rng.choice(self.clients)
            if client.account.conversation_ids and not client.stopped:
                client.send(self.rng.choice(client.account.conversation_ids))
            next_due += interval
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))

    async def stop(self) -> None:
        self.sending = False
        self.ledger.stopped_at = min(self.ledger.stopped_at, time.monotonic())
        await asyncio.gather(*(client.stop() for client in self.clients))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.discovery.close()

    async def take_offline(self, users: int) -> list[int]:
        """Close every device of the last ``users`` users for good (after ``settle``), so
        that presence has users to show offline too; returns their ids. Ends the run for
        the checker's live-again figures (``ledger.stopped_at``)."""
        self.sending = False
        self.ledger.stopped_at = min(self.ledger.stopped_at, time.monotonic())
        connected = self.accounts[: len(self.accounts) - self.push_users]
        gone = {account.user_id for account in connected[len(connected) - users :]}
        await asyncio.gather(
            *(client.stop() for client in self.clients if client.account.user_id in gone)
        )
        return sorted(gone)

    def reconnect_all(self) -> asyncio.Future[None]:
        """Drop every device's socket at once; each reconnects (and syncs) immediately.

        Takes effect when called; the returned future is already done, so callers may
        await it or not."""
        for client in self.clients:
            client.drop()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def devices_per_server(self) -> list[int]:
        """How many devices are connected to each server (by index in ``ws_urls``)."""
        return [sum(1 for c in self.clients if c.url == url) for url in self.ws_urls]

    # --- settling ---------------------------------------------------------------------
    def all_live(self) -> bool:
        return all(client.live for client in self.clients)

    def settled(self) -> bool:
        return (
            self.all_live()
            and not any(client.outbox for client in self.clients)
            and self.ledger.undelivered() == 0
        )

    async def settle(self, timeout: float) -> bool:  # noqa: ASYNC109 (the runner's interface)
        """Stop new sends, then wait until every device is live, every outbox is empty and
        every acknowledged message reached every member's devices; False on timeout."""
        self.sending = False
        return await self.wait_for(self.settled, timeout)

    @staticmethod
    async def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    # --- truth and what the server says ----------------------------------------------
    def presence_truth(self) -> dict[int, str]:
        """Every user with a live device online, every other offline."""
        online = {client.account.user_id for client in self.clients if client.live}
        return {a.user_id: "online" if a.user_id in online else "offline" for a in self.accounts}

    async def read_presence(self) -> dict[int, str | None]:
        """Each user's status as its direct-conversation partner sees it (REST presence)."""
        seen: dict[int, str | None] = {}
        async with httpx.AsyncClient(timeout=10) as http:
            for index, account in enumerate(self.accounts):
                partner = self.accounts[(index + 1) % len(self.accounts)]
                body = await _get_json(
                    http,
                    self.http_urls,
                    "/api/v1/presence",
                    {"ids": str(account.user_id)},
                    partner.token,
                )
                for row in body["results"]:
                    seen[int(row["user_id"])] = row["status"]
        return seen

    async def read_history(self) -> list[StoredMessage]:
        """Every message of every conversation, paged newest first over REST."""
        token_of = {account.user_id: account.token for account in self.accounts}
        rows: list[StoredMessage] = []
        async with httpx.AsyncClient(timeout=30) as http:
            for conversation_id, members in self.ledger.members.items():
                rows += await _conversation_history(
                    http, self.http_urls, conversation_id, token_of[members[0]]
                )
        return rows


async def _get_json(
    http: httpx.AsyncClient,
    urls: Sequence[str],
    path: str,
    params: Mapping[str, str | int],
    token: str,
) -> Any:
    """GET from the first server that answers (after faults some may still be down)."""
    failure: httpx.HTTPError | None = None
    for url in urls:
        try:
            response = await http.get(
                url + path, params=params, headers={"Authorization": f"Bearer {token}"}
            )
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as exc:
            failure = exc
    raise RuntimeError(f"GET {path}: no server answered") from failure


async def _conversation_history(
    http: httpx.AsyncClient, urls: Sequence[str], conversation_id: int, token: str
) -> list[StoredMessage]:
    rows: list[StoredMessage] = []
    params: dict[str, str | int] = {"limit": HISTORY_PAGE}
    while True:
        path = f"/api/v1/conversations/{conversation_id}/messages"
        page = (await _get_json(http, urls, path, params, token))["results"]
        rows += [
            StoredMessage(
                int(m["id"]), int(m["conversation_id"]), int(m["sender_id"]), m["client_msg_id"]
            )
            for m in page
        ]
        if len(page) < HISTORY_PAGE:
            return rows
        params["before"] = min(int(m["id"]) for m in page)


def history_from_database(dsn: str, conversation_ids: Sequence[int]) -> list[StoredMessage]:
    """The same rows read straight from the message store's table (PostgreSQL DSN)."""
    import psycopg

    with psycopg.connect(dsn) as connection:
        cursor = connection.execute(
            "SELECT id, conversation_id, sender_id, client_msg_id FROM message_store_message"
            " WHERE conversation_id = ANY(%s)",
            (list(conversation_ids),),
        )
        return [StoredMessage(int(a), int(b), int(c), str(d)) for a, b, c, d in cursor.fetchall()]
