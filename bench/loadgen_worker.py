"""One load generator process: many WebSocket client devices on one uvloop event loop.

The coordinator (``bench.loadgen``) sends it commands over a pipe; it answers each with
one reply and, while a rate step runs, progress reports. Devices speak the chat protocol
as a real client does (hello, sync until live, acks once a second), and every event they
receive goes through the loss/duplicate ledger.

Send times are scheduled ahead (open loop): message k of a step is due at
``start + k * interval`` whether or not earlier ones were answered, and latency is taken
from that due time, so a stalled server cannot hide its queueing (no coordinated
omission). The due time travels in the message text; the clocks agree because every
process reads the machine's one monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .ledger import DeviceStream, Ledger
from .population import Device

ACK_INTERVAL_SECONDS = 1.0
# As a real client does, so that the server's presence timeout (60 s) never closes an idle
# benchmark socket.
HEARTBEAT_SECONDS = 25.0
# Beyond this many sockets to one server port the loopback ephemeral ports run out; later
# devices connect from other loopback source addresses.
SOCKETS_PER_SOURCE_ADDRESS = 20_000


@dataclass
class Faults:
    """Deliberate client-side faults, to prove the ledger notices them (tests only)."""

    drop_nth: int = 0  # the n-th message.new received by this process is ignored
    duplicate_nth: int = 0  # the n-th message.new received is processed twice
    seen: int = 0


@dataclass
class StepPlan:
    step: int
    kind: str  # "send" or "ping"
    start_at: float  # time.monotonic() of the first due send
    duration: float
    interval: float  # seconds between this process's sends (all its senders in turn)
    text_size: int = 40


@dataclass
class DeviceClient:
    device: Device
    stream: DeviceStream = field(default_factory=DeviceStream)
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    live: asyncio.Event = field(default_factory=asyncio.Event)
    acked_seq: int = 0
    sent_count: int = 0
    last_frame_at: float = 0.0


@dataclass
class WorkerSetup:
    """What one load generator process is given when it starts (sent pickled)."""

    devices: list[Device]
    recipients: dict[int, int]  # conversation id -> how many receive each of its messages
    faults: Faults
    # 0: never acknowledge (to measure what acknowledgements cost the server)
    ack_seconds: float


class Worker:
    def __init__(self, pipe: Connection, setup: WorkerSetup) -> None:
        self.pipe = pipe
        self.ack_seconds = setup.ack_seconds
        self.clients = {device.index: DeviceClient(device) for device in setup.devices}
        self.recipients = setup.recipients
        self.faults = setup.faults
        self.ledger = Ledger()
        self.latencies: dict[int, array[float]] = {}
        self.ack_latencies: dict[int, array[float]] = {}
        self.errors: Counter[str] = Counter()
        self.errors_reported: Counter[str] = Counter()
        self.sent = 0
        self.acks = 0
        self.delivered = 0
        self.pongs = 0
        self.snapshots = 0
        self.snapshots_wanted = 0
        self.snapshots_done = asyncio.Event()
        # (user id, status, arrival time) of every presence event received
        self.presence: list[tuple[int, str | None, float]] = []
        # Frames being written (not awaited by the schedule); kept so they are not collected.
        self.sending: set[asyncio.Task[None]] = set()

    # --- receiving ------------------------------------------------------------------------
    def _on_frame(self, client: DeviceClient, raw: str | bytes) -> None:
        now = time.monotonic_ns()
        frame: dict[str, Any] = orjson.loads(raw)
        kind = frame.get("type")
        if kind == "message.new":
            self._on_message(client, frame, now, live=True)
        elif kind == "sent":
            self._on_sent(client, frame, now)
        elif kind == "pong":
            if frame.get("ref") != "hb":
                self.pongs += 1
                step, due = _parse_ref(frame.get("ref"))
                self.ack_latencies.setdefault(step, array("d")).append((now - due) / 1e6)
        elif kind == "presence":
            self.presence.append((int(frame["user_id"]), frame.get("status"), now / 1e9))
        elif kind == "presence.snapshot":
            self.snapshots += 1
            if self.snapshots >= self.snapshots_wanted:
                self.snapshots_done.set()
        elif kind == "sync.page":
            self._on_sync_page(client, frame)
        elif kind == "error":
            self.errors[str(frame.get("code"))] += 1
        elif "seq" in frame:
            client.stream.accept(frame["seq"], None, self.ledger)

    def _on_message(
        self, client: DeviceClient, frame: dict[str, Any], now: int, *, live: bool
    ) -> None:
        message = frame["message"]
        if message["sender_id"] == client.device.user_id:
            # Our own message (from a sync page): it only moves the cursor.
            client.stream.accept(frame.get("seq"), None, self.ledger)
            return
        repeats = 1
        if live and (self.faults.drop_nth or self.faults.duplicate_nth):
            self.faults.seen += 1
            if self.faults.seen == self.faults.drop_nth:
                return
            if self.faults.seen == self.faults.duplicate_nth:
                repeats = 2
        for _ in range(repeats):
            if client.stream.accept(frame.get("seq"), message["id"], self.ledger):
                self.delivered += 1
                if live:
                    step, due = _parse_ref(message["text"].split(" ", 1)[0])
                    self.latencies.setdefault(step, array("d")).append((now - due) / 1e6)

    def _on_sent(self, client: DeviceClient, frame: dict[str, Any], now: int) -> None:
        client.stream.accept(frame.get("seq"), None, self.ledger)
        if frame.get("duplicate"):
            return
        self.acks += 1
        step, due = _parse_ref(frame.get("ref"))
        self.ack_latencies.setdefault(step, array("d")).append((now - due) / 1e6)
        conversation_id = client.device.conversation_id or 0
        self.ledger.acked[int(frame["message_id"])] = (step, self.recipients[conversation_id])

    def _on_sync_page(self, client: DeviceClient, frame: dict[str, Any]) -> None:
        for event in frame["events"]:
            if event.get("type") == "message.new":
                self._on_message(client, event, 0, live=False)
            else:
                client.stream.accept(event.get("seq"), None, self.ledger)
        client.stream.cursor = max(client.stream.cursor, int(frame["last_seq"]))
        if frame["has_more"]:
            self._send_soon(client, {"type": "sync", "after": client.stream.cursor, "limit": 500})
        else:
            client.live.set()

    async def _read(self, client: DeviceClient, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self._on_frame(client, raw)

    def _send_soon(self, client: DeviceClient, frame: dict[str, Any]) -> None:
        if client.ws is not None:
            client.last_frame_at = time.monotonic()
            task = asyncio.get_running_loop().create_task(
                _send(client.ws, orjson.dumps(frame).decode())
            )
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    # --- commands -------------------------------------------------------------------------
    async def connect(self, indexes: list[int] | None, concurrency: int, sync: bool) -> Any:
        """Open sockets (bounded concurrency); returns per-device hello and live times."""
        limit = asyncio.Semaphore(concurrency)
        hello_at: list[float] = []
        live_at: list[float] = []
        failures: Counter[str] = Counter()
        started = time.monotonic()

        async def one(client: DeviceClient) -> None:
            async with limit:
                try:
                    await self._open(client, sync=sync, hello_at=hello_at)
                # Count every kind of failure and keep the other devices going.
                except Exception as exc:  # noqa: BLE001
                    failures[type(exc).__name__] += 1
                    return
            if sync:
                try:
                    await asyncio.wait_for(client.live.wait(), 120)
                    live_at.append(time.monotonic())
                except TimeoutError:
                    failures["not live in 120 s"] += 1

        chosen = self._chosen(indexes)
        await asyncio.gather(*(one(client) for client in chosen))
        return {
            "started": started,
            "hello_at": hello_at,
            "live_at": live_at,
            "failures": dict(failures),
        }

    async def _open(self, client: DeviceClient, *, sync: bool, hello_at: list[float]) -> None:
        device = client.device
        extra: dict[str, Any] = {}
        if device.index >= SOCKETS_PER_SOURCE_ADDRESS:
            source = 2 + device.index // SOCKETS_PER_SOURCE_ADDRESS
            extra["local_addr"] = (f"127.0.0.{source}", 0)
        ws = await connect(
            device.ws_url,
            additional_headers={"Authorization": f"Bearer {device.token}"},
            compression=None,
            ping_interval=None,  # heartbeats are the protocol's own ping frames
            open_timeout=120,
            max_size=64 * 1024 * 1024,
            max_queue=None,
            **extra,
        )
        hello = orjson.loads(await asyncio.wait_for(ws.recv(), 120))
        if hello.get("type") != "hello":
            await ws.close()
            raise ConnectionError(f"refused: {hello.get('code')}")
        hello_at.append(time.monotonic())
        client.ws = ws
        client.last_frame_at = time.monotonic()
        client.live.clear()
        client.reader = asyncio.get_running_loop().create_task(self._read(client, ws))
        if sync:
            await ws.send(
                orjson.dumps({"type": "sync", "after": client.stream.cursor, "limit": 500}).decode()
            )

    async def close(self, indexes: list[int] | None) -> Any:
        async def one(client: DeviceClient) -> None:
            if client.ws is not None:
                with contextlib.suppress(Exception):
                    await client.ws.close()
            if client.reader is not None:
                with contextlib.suppress(BaseException):
                    await client.reader
            client.ws = None
            client.reader = None

        await asyncio.gather(*(one(client) for client in self._chosen(indexes)))
        return None

    def _chosen(self, indexes: list[int] | None) -> list[DeviceClient]:
        if indexes is None:
            return list(self.clients.values())
        return [self.clients[index] for index in indexes if index in self.clients]

    async def run(self, plan: StepPlan) -> Any:
        """Send on schedule for ``plan.duration`` seconds, reporting progress each second."""
        if plan.kind == "send":
            senders = [c for c in self.clients.values() if c.device.conversation_id and c.ws]
        else:
            senders = [c for c in self.clients.values() if c.ws]
        if not senders or plan.interval <= 0:
            return {"sent": 0, "late_ms": 0.0}
        padding = "x" * max(0, plan.text_size - 30)
        loop = asyncio.get_running_loop()
        tick = 0
        sent = 0
        worst_late = 0.0
        next_progress = plan.start_at + 1.0
        end = plan.start_at + plan.duration
        while True:
            due = plan.start_at + tick * plan.interval
            if due >= end:
                break
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
                now = time.monotonic()
            worst_late = max(worst_late, now - due)
            client = senders[tick % len(senders)]
            tick += 1
            ws = client.ws
            if ws is None:
                continue
            client.last_frame_at = now
            ref = f"{plan.step}:{int(due * 1e9)}"
            if plan.kind == "send":
                client.sent_count += 1
                frame = {
                    "type": "send",
                    "ref": ref,
                    "conversation_id": client.device.conversation_id,
                    "client_msg_id": f"{client.device.user_id}-{client.sent_count}",
                    "text": f"{ref} {padding}",
                }
            else:
                frame = {"type": "ping", "ref": ref}
            # Not awaited: a slow socket must not delay the schedule of the others.
            task = loop.create_task(_send(ws, orjson.dumps(frame).decode()))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)
            sent += 1
            self.sent += 1
            if now >= next_progress:
                next_progress += 1.0
                self.pipe.send(("progress", self.progress()))
        self.pipe.send(("progress", self.progress()))
        return {"sent": sent, "late_ms": worst_late * 1000}

    def progress(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "acks": self.acks,
            "delivered": self.delivered,
            "pongs": self.pongs,
            "owed": sum(expected for _, expected in self.ledger.acked.values()),
            "errors": sum(self.errors.values()),
        }

    def step_stats(self, step: int) -> Any:
        """Latencies of this step's messages, and the errors since the last call."""
        new_errors = self.errors - self.errors_reported
        self.errors_reported = Counter(self.errors)
        return {
            "latencies": self.latencies.pop(step, array("d")).tobytes(),
            "ack_latencies": self.ack_latencies.pop(step, array("d")).tobytes(),
            "errors": dict(new_errors),
        }

    def ledger_state(self) -> Ledger:
        return self.ledger

    async def ack_forever(self) -> None:
        """Acknowledge like a real client: at most once a second per device, when it moved;
        and ping when nothing else was sent for ``HEARTBEAT_SECONDS``."""
        while True:
            await asyncio.sleep(self.ack_seconds or ACK_INTERVAL_SECONDS)
            quiet_since = time.monotonic() - HEARTBEAT_SECONDS
            for client in self.clients.values():
                if client.ws is None:
                    continue
                if self.ack_seconds and client.stream.cursor > client.acked_seq:
                    client.acked_seq = client.stream.cursor
                    self._send_soon(client, {"type": "ack", "seq": client.acked_seq})
                elif client.last_frame_at < quiet_since:
                    self._send_soon(client, {"type": "ping", "ref": "hb"})

    async def watch(self) -> Any:
        """Subscribe every connected device to presence; wait for their snapshots."""
        clients = [client for client in self.clients.values() if client.ws is not None]
        self.snapshots = 0
        self.snapshots_wanted = len(clients)
        self.snapshots_done.clear()
        for client in clients:
            self._send_soon(client, {"type": "watch"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.snapshots_done.wait(), 30)
        return self.snapshots

    def take_presence(self) -> list[tuple[int, str | None, float]]:
        events, self.presence = self.presence, []
        return events

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        acker = loop.create_task(self.ack_forever())
        try:
            while True:
                # A blocking read in a thread: watching the pipe from the event loop would
                # make it non-blocking, and large replies would then fail half-written.
                name, argument = await loop.run_in_executor(None, self.pipe.recv)
                if name == "quit":
                    await self.close(None)
                    self.pipe.send(("done", None))
                    return
                reply = await self._dispatch(name, argument)
                self.pipe.send(("done", reply))
        finally:
            acker.cancel()

    async def _dispatch(self, name: str, argument: Any) -> Any:
        commands: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "connect": lambda arg: self.connect(*arg),
            "close": self.close,
            "run": self.run,
            "watch": lambda _: self.watch(),
            "progress": _now(lambda _: self.progress()),
            "step_stats": _now(self.step_stats),
            "ledger": _now(lambda _: self.ledger_state()),
            "presence": _now(lambda _: self.take_presence()),
        }
        return await commands[name](argument)


def _now(function: Callable[[Any], Any]) -> Callable[[Any], Awaitable[Any]]:
    """A synchronous command as a coroutine function."""

    async def run(argument: Any) -> Any:
        return function(argument)

    return run


async def _send(ws: ClientConnection, data: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(data)


def _parse_ref(ref: object) -> tuple[int, int]:
    """``"<step>:<due ns>"`` -> (step, due ns)."""
    step, _, due = str(ref).partition(":")
    return int(step), int(due)


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def worker_main(pipe: Connection, setup: WorkerSetup) -> None:
    """Entry point of a load generator process (spawned by ``bench.loadgen``)."""
    _raise_fd_limit()
    uvloop.run(Worker(pipe, setup).serve())
