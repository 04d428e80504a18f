"""A device client that behaves like a real app, per docs/protocol.md, for fault injection.

``DeviceClient.run()`` keeps one device connected for the whole run: it connects to the
server discovery names (``Discovery``: ``GET /api/v1/chat-servers/best``, asked of the
server the ``ServerPicker`` would try, as an app asks the load balancer) or, when that
fails or names a server that failed recently, to the picker's (round robin, skipping
servers that failed recently),
reads ``hello``, sends ``sync`` from its stored cursor until a page has ``has_more``
false (then it is live), applies live events in ``seq`` order (ignoring replays, re-syncing
on a gap), ``ack``s once a second, pings when idle and treats a missing ``pong`` as a dead
connection. Sends wait in an outbox until ``sent`` (or the device's own ``message.new``)
confirms them; after every reconnect, once live, the outbox is re-sent with the SAME
``client_msg_id``s. A lost connection is retried with exponential backoff and jitter,
except after 4001/4002/4003; after 4012 (the server is draining) at once, elsewhere.
``drop()`` cuts the socket at once and reconnects without
backoff (the reconnect burst). Everything seen goes into the run's ``ChaosLedger``.

``DropFault`` makes a client buggy on purpose (it moves its cursor past the n-th live
``message.new`` without storing it), so tests can prove the checker notices a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from .ledger import ChaosLedger, SendAttempt, SentAck, StreamEvent

# Closes after which reconnecting with the same token is refused again (docs/protocol.md).
FINAL_CLOSE_CODES = frozenset({4001, 4002, 4003})
# The server is shutting down: reconnect at once, and not to it while it restarts.
CLOSE_SERVER_DRAINING = 4012
DRAINED_DOWN_SECONDS = 10.0
REFUSED_CODES = frozenset(
    {"not_authenticated", "invalid_token", "origin_not_allowed", "origin_required", "revoked"}
)
SYNC_PAGE_LIMIT = 200
# Outbox re-sends are paced under the server's flood control (30 frames/s per connection).
RESEND_SPACING_SECONDS = 0.04
WATCHDOG_SECONDS = 0.25


@dataclass(frozen=True)
class ClientSettings:
    backoff_initial: float = 0.25
    backoff_cap: float = 5.0
    ack_interval: float = 1.0
    # Ping after this long without sending or without receiving; no frame within
    # pong_timeout of that ping means the server is gone (paused, partitioned): the socket
    # is dropped and another server tried.
    ping_idle: float = 3.0
    pong_timeout: float = 4.0
    send_timeout: float = 8.0
    open_timeout: float = 5.0


@dataclass(frozen=True)
class DeviceAccount:
    key: str
    user_id: int
    token: str
    conversation_ids: tuple[int, ...]


@dataclass
class DropFault:
    """The ``drop_nth`` live ``message.new`` from another user, over all clients, is skipped."""

    drop_nth: int = 0
    seen: int = 0
    dropped: list[tuple[str, int]] = field(default_factory=list)  # (device, message id)

    def should_drop(self) -> bool:
        if not self.drop_nth:
            return False
        self.seen += 1
        return self.seen == self.drop_nth


class Discovery:
    """Asks a server which server to use (``GET /api/v1/chat-servers/best``); shared by
    every client of a workload (one HTTP connection pool)."""

    def __init__(self, timeout: float = 2.0) -> None:
        self._http = httpx.AsyncClient(timeout=timeout)
        self.asked = 0
        self.answered = 0

    async def best(self, *, via_ws_url: str, token: str) -> str | None:
        """The WebSocket URL the server at ``via_ws_url`` suggests; None when it cannot
        answer (down, paused, partitioned: the caller falls back to its own pick)."""
        base = via_ws_url.replace("ws://", "http://", 1).removesuffix("/ws/")
        self.asked += 1
        try:
            response = await self._http.get(
                base + "/api/v1/chat-servers/best", headers={"Authorization": f"Bearer {token}"}
            )
            response.raise_for_status()
            url = response.json()["ws_url"]
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        self.answered += 1
        return str(url)

    async def close(self) -> None:
        await self._http.aclose()


class ServerPicker:
    """Round robin over the servers, skipping those that failed within their down time."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)
        self.down_until: dict[str, float] = {}
        self.position = 0

    def pick(self) -> str:
        now = time.monotonic()
        for _ in self.urls:
            url = self.urls[self.position % len(self.urls)]
            self.position += 1
            if self.down_until.get(url, 0.0) <= now:
                return url
        return min(self.urls, key=lambda url: self.down_until.get(url, 0.0))

    def mark_down(self, url: str, seconds: float) -> None:
        self.down_until[url] = time.monotonic() + seconds

    def usable(self, url: str) -> bool:
        """One of the servers, and not marked down."""
        return url in self.urls and self.down_until.get(url, 0.0) <= time.monotonic()


@dataclass
class PendingSend:
    conversation_id: int
    client_msg_id: str
    text: str
    attempts: int = 0
    last_sent_at: float = 0.0
    session: int = -1  # the session that last transmitted it
    server_errors: int = 0  # in a row: each one doubles the wait before the next retry


class DeviceClient:
    def __init__(
        self,
        account: DeviceAccount,
        urls: Sequence[str],
        ledger: ChaosLedger,
        *,
        settings: ClientSettings | None = None,
        fault: DropFault | None = None,
        seed: int = 0,
        discovery: Discovery | None = None,
    ) -> None:
        self.account = account
        self.discovery = discovery
        self.picker = ServerPicker(urls)
        self.picker.position = seed
        self.ledger = ledger
        self.settings = settings or ClientSettings()
        self.fault = fault
        self.rng = random.Random(seed)
        self.cursor = 0
        self.outbox: dict[str, PendingSend] = {}
        self.ws: ClientConnection | None = None
        self.url: str | None = None  # the server this device is connected to
        self.live = False
        self.stopped = False  # stop() called, or the server refused this device for good
        self._session = 0
        self._resyncing = False
        self._flushing = False
        self._immediate = False
        self._sent_count = 0
        self._acked = 0
        self._last_ack_at = 0.0
        self._last_sent_at = 0.0
        self._last_received_at = 0.0
        self._ping_sent_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._between_sessions = asyncio.Event()
        self._between_sessions.set()
        ledger.add_device(account.key, account.user_id, self.cursor)

    # --- the connection loop ----------------------------------------------------------
    async def run(self) -> None:
        failures = 0
        while not self.stopped:
            url = await self._choose()
            ws = await self._open(url)
            if ws is None:
                failures += 1
                self.picker.mark_down(url, max(1.0, self._backoff(failures)))
                await asyncio.sleep(self._backoff(failures))
                continue
            self.url = url
            was_live = await self._session_on(ws)
            self.url = None
            failures = 0 if was_live else failures + 1
            if ws.close_code == CLOSE_SERVER_DRAINING:
                self.picker.mark_down(url, DRAINED_DOWN_SECONDS)
                self._immediate = True
            if self._immediate:
                self._immediate = False
                continue
            if not self.stopped:
                await asyncio.sleep(self._backoff(failures))

    async def _choose(self) -> str:
        fallback = self.picker.pick()
        if self.discovery is None:
            return fallback
        suggested = await self.discovery.best(via_ws_url=fallback, token=self.account.token)
        return suggested if suggested is not None and self.picker.usable(suggested) else fallback

    def _backoff(self, failures: int) -> float:
        """Exponential with jitter: half the step fixed, half random."""
        step = min(
            self.settings.backoff_cap, self.settings.backoff_initial * 2.0 ** max(0, failures)
        )
        return step / 2 + self.rng.uniform(0, step / 2)

    async def _open(self, url: str) -> ClientConnection | None:
        try:
            ws = await connect(
                url,
                additional_headers={"Authorization": f"Bearer {self.account.token}"},
                compression=None,
                ping_interval=None,  # liveness is checked with the protocol's own ping frames
                open_timeout=self.settings.open_timeout,
                max_size=16 * 1024 * 1024,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            self.ledger.record_error(self.account.key, f"connect:{type(exc).__name__}", frame=False)
            return None
        try:
            hello = orjson.loads(await asyncio.wait_for(ws.recv(), self.settings.open_timeout))
        except (TimeoutError, ConnectionClosed, orjson.JSONDecodeError) as exc:
            self.ledger.record_error(self.account.key, f"hello:{type(exc).__name__}", frame=False)
            ws.transport.abort()
            return None
        if hello.get("type") != "hello":
            code = str(hello.get("code"))
            self.ledger.record_error(self.account.key, code, frame=True)
            self.stopped = self.stopped or code in REFUSED_CODES
            await ws.close()
            return None
        return ws

    async def _session_on(self, ws: ClientConnection) -> bool:
        """Sync, then follow the stream until the socket closes; True if it became live."""
        self._session += 1
        self._between_sessions.clear()
        self.ws = ws
        self.live = self._resyncing = self._flushing = False
        self._last_received_at = time.monotonic()
        self._ping_sent_at = None
        self._write({"type": "sync", "after": self.cursor, "limit": SYNC_PAGE_LIMIT})
        watchdog = asyncio.get_running_loop().create_task(self._watch(ws))
        became_live = False
        try:
            async for raw in ws:
                self._on_frame(raw)
                became_live = became_live or self.live
        except ConnectionClosed:
            pass
        except (KeyError, TypeError, ValueError) as exc:
            # A frame this client cannot read is a finding to report, not the end of the run.
            kind = f"unreadable_frame:{type(exc).__name__}"
            self.ledger.record_error(self.account.key, kind, frame=False)
            ws.transport.abort()
        finally:
            watchdog.cancel()
            self.ws = None
        if self.live:
            self.ledger.record_live(self.account.key, False)
        self.live = False
        code = ws.close_code
        if not self.stopped and not self._immediate:
            self.ledger.record_error(self.account.key, f"closed:{code}", frame=False)
        if code in FINAL_CLOSE_CODES:
            self.stopped = True
        self._between_sessions.set()
        return became_live

    async def _watch(self, ws: ClientConnection) -> None:
        """Acks, heartbeats, dead-connection detection and send timeouts of one session."""
        settings = self.settings
        while True:
            await asyncio.sleep(WATCHDOG_SECONDS)
            now = time.monotonic()
            if self._ping_sent_at is not None and now - self._ping_sent_at > settings.pong_timeout:
                self.ledger.record_error(self.account.key, "pong_timeout", frame=False)
                ws.transport.abort()
                return
            if self.cursor > self._acked and now - self._last_ack_at >= settings.ack_interval:
                self._send_ack(now)
            # Ping when nothing came in for a while, even while sending: a paused server
            # swallows sends silently, and only a missing pong reveals it.
            quiet = max(now - self._last_sent_at, now - self._last_received_at)
            if self._ping_sent_at is None and quiet >= settings.ping_idle:
                self._ping_sent_at = now
                self._write({"type": "ping", "ref": "hb"})
            if self.live and not self._flushing:
                for pending in list(self.outbox.values()):
                    if now - pending.last_sent_at > settings.send_timeout:
                        self._transmit(pending)

    def _send_ack(self, now: float) -> None:
        self._acked = self.cursor
        self._last_ack_at = now
        self._write({"type": "ack", "seq": self.cursor})

    # --- sending ----------------------------------------------------------------------
    def send(self, conversation_id: int) -> str:
        """Queue a new message; it is transmitted now if live, else after the next sync."""
        self._sent_count += 1
        client_msg_id = f"{self.account.key}-{self._sent_count}"
        pending = PendingSend(conversation_id, client_msg_id, f"chaos {client_msg_id}")
        self.outbox[client_msg_id] = pending
        if self.live and not self._resyncing and not self._flushing:
            self._transmit(pending)
        return client_msg_id

    def _transmit(self, pending: PendingSend) -> None:
        now = time.monotonic()
        self.ledger.record_attempt(
            SendAttempt(
                device=self.account.key,
                user_id=self.account.user_id,
                conversation_id=pending.conversation_id,
                client_msg_id=pending.client_msg_id,
                at=now,
                retry=pending.attempts > 0,
            )
        )
        pending.attempts += 1
        pending.last_sent_at = now
        pending.session = self._session
        self._write(
            {
                "type": "send",
                "ref": pending.client_msg_id,
                "conversation_id": pending.conversation_id,
                "client_msg_id": pending.client_msg_id,
                "text": pending.text,
            }
        )

    async def _flush_outbox(self, session: int) -> None:
        """Re-send, in order and paced, every send this session has not transmitted yet."""
        try:
            while self._session == session and self.live:
                waiting = [p for p in self.outbox.values() if p.session != session]
                if not waiting:
                    return
                self._transmit(waiting[0])
                await asyncio.sleep(RESEND_SPACING_SECONDS)
        finally:
            self._flushing = False

    def _write(self, frame: dict[str, Any]) -> None:
        ws = self.ws
        if ws is None:
            return
        self._last_sent_at = time.monotonic()
        self._spawn(_send(ws, orjson.dumps(frame).decode()))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- receiving --------------------------------------------------------------------
    def _on_frame(self, raw: str | bytes) -> None:
        self._last_received_at = time.monotonic()
        self._ping_sent_at = None  # any frame proves the connection works
        frame: dict[str, Any] = orjson.loads(raw)
        kind = frame.get("type")
        if kind == "sync.page":
            self._on_page(frame)
        elif kind == "sent":
            self._on_sent(frame)
        elif kind == "error":
            self._on_error(frame)
        elif "seq" in frame and self.live and not self._resyncing:
            self._on_live_event(frame)

    def _on_live_event(self, frame: dict[str, Any]) -> None:
        seq = int(frame["seq"])
        if seq <= self.cursor:
            self.ledger.replayed[self.account.key] += 1
        elif seq > self.cursor + 1:
            self.ledger.record_gap(self.account.key, self.cursor, seq)
            self._resync()
        else:
            self._apply(frame, live=True)

    def _resync(self) -> None:
        """docs/protocol.md, cursor rule 5: sync from the cursor; live events wait for it."""
        self._resyncing = True
        self._write({"type": "sync", "after": self.cursor, "limit": SYNC_PAGE_LIMIT})

    def _on_page(self, page: dict[str, Any]) -> None:
        for event in page["events"]:
            seq = int(event["seq"])
            if seq <= self.cursor:
                self.ledger.replayed[self.account.key] += 1
                continue
            if seq > self.cursor + 1:
                self.ledger.record_gap(self.account.key, self.cursor, seq)
            self._apply(event, live=False)
        self.cursor = max(self.cursor, int(page["last_seq"]))
        self._send_ack(time.monotonic())
        if page["has_more"]:
            self._write({"type": "sync", "after": self.cursor, "limit": SYNC_PAGE_LIMIT})
            return
        self._resyncing = False
        if not self.live:
            self.live = True
            self.ledger.record_live(self.account.key, True)
            self._flushing = True
            self._spawn(self._flush_outbox(self._session))

    def _apply(self, event: dict[str, Any], *, live: bool) -> None:
        seq = int(event["seq"])
        kind = str(event["type"])
        message = event.get("message") if kind.startswith("message.") or kind == "sent" else None
        self.cursor = seq
        if message is None:
            self.ledger.record_event(StreamEvent(self.account.key, seq, kind, time.monotonic()))
            return
        own = int(message["sender_id"]) == self.account.user_id
        if kind == "message.new" and live and not own and self.fault and self.fault.should_drop():
            # The deliberate bug: the cursor moved on, the message was never stored.
            self.fault.dropped.append((self.account.key, int(message["id"])))
            return
        self.ledger.record_event(
            StreamEvent(
                device=self.account.key,
                seq=seq,
                type=kind,
                at=time.monotonic(),
                message_id=int(message["id"]),
                conversation_id=int(message["conversation_id"]),
                sender_id=int(message["sender_id"]),
                client_msg_id=str(message["client_msg_id"]),
            )
        )
        if kind == "message.new" and own:
            # Our own message in the stream confirms a send whose `sent` we never saw.
            self.outbox.pop(str(message["client_msg_id"]), None)

    def _on_sent(self, frame: dict[str, Any]) -> None:
        client_msg_id = str(frame["client_msg_id"])
        self.outbox.pop(client_msg_id, None)
        seq = frame.get("seq")
        duplicate = bool(frame.get("duplicate"))
        ack = SentAck(
            device=self.account.key,
            user_id=self.account.user_id,
            conversation_id=int(frame["conversation_id"]),
            client_msg_id=client_msg_id,
            message_id=int(frame["message_id"]),
            seq=None if seq is None else int(seq),
            duplicate=duplicate,
            at=time.monotonic(),
        )
        self.ledger.record_ack(ack)
        if seq is None or duplicate or self._resyncing or not self.live:
            return  # outside the stream: the position comes as our own message.new
        self._on_live_event(
            {
                "seq": seq,
                "type": "sent",
                "message": {
                    "id": ack.message_id,
                    "conversation_id": ack.conversation_id,
                    "sender_id": self.account.user_id,
                    "client_msg_id": client_msg_id,
                },
            }
        )

    def _on_error(self, frame: dict[str, Any]) -> None:
        code = str(frame.get("code"))
        self.ledger.record_error(self.account.key, code, frame=True)
        pending = self.outbox.get(str(frame.get("ref")))
        if pending is None:
            return
        if code == "rate_limited":
            # Retried by the watchdog once the window has passed.
            retry_after = float(frame.get("retry_after") or 1.0)
            pending.last_sent_at = time.monotonic() + retry_after - self.settings.send_timeout
        elif code == "server_error":
            # The outcome is unknown: retry, but back off, or every device retrying at once
            # while Redis or PostgreSQL is down multiplies the load (docs/protocol.md).
            delay = self._backoff(pending.server_errors)
            pending.server_errors += 1
            pending.last_sent_at = time.monotonic() + delay - self.settings.send_timeout
        else:
            del self.outbox[pending.client_msg_id]  # refused: retrying would be refused too

    # --- control ----------------------------------------------------------------------
    def drop(self) -> None:
        """Cut the socket now (as a network drop does) and reconnect without backoff."""
        ws = self.ws
        if ws is not None:
            self._immediate = True
            ws.transport.abort()

    async def stop(self) -> None:
        """Close for good; returns once the session has ended (and is in the ledger)."""
        self.stopped = True
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._between_sessions.wait(), 5)


async def _send(ws: ClientConnection, data: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(data)
