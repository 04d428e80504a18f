"""One authenticated device's connection: its parts wired together, and what the hub
delivers to (``chat.realtime.hub.LiveConnection``).

* the outbox (chat.outbox): frames queued for the socket, never awaited;
* the device stream (stream.py): cursor, pending events, gap filling;
* the ack flusher (acks.py) and the unacknowledged-push timer (unacked.py);
* the flood guard (flood.py) and the frame router (router.py);
* the extensions registered by apps built on chat (extensions.py; presence).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from chat import protocol, realtime
from chat.outbox import Outbox
from chatproject import lifecycle

from .acks import AckFlusher
from .extensions import ConnectionExtension, Extension, registered_extensions
from .flood import FloodGuard, Verdict
from .router import FrameRouter
from .stream import DeviceStream
from .unacked import UnackedPushTimer


class DeviceConnection:
    __slots__ = (
        "_busy",
        "_closed",
        "_extensions",
        "_flood",
        "_idle_waiter",
        "_outbox",
        "_router",
        "_stopping",
        "acks",
        "device_id",
        "stream",
        "unacked",
        "user_id",
    )

    def __init__(
        self, *, user_id: int, device_id: int, outbox: Outbox, last_seq: int, delivered_seq: int
    ) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self._outbox = outbox
        self._closed = False
        self.acks = AckFlusher(user_id=user_id, device_id=device_id, delivered_seq=delivered_seq)
        self.unacked = UnackedPushTimer(
            user_id=user_id, device_id=device_id, acked=lambda: self.acks.acked
        )
        self.stream = DeviceStream(
            user_id=user_id,
            newest_seq=last_seq,
            write=self.send_bytes,
            on_live_write=self.unacked.written,
        )
        self._flood = FloodGuard()
        self._extensions: list[tuple[Extension, ConnectionExtension]] = [
            (extension, extension.factory(self)) for extension in registered_extensions()
        ]
        self._router = FrameRouter(
            self, stream=self.stream, acks=self.acks, extensions=self._extensions
        )
        # Extension stops running as tasks after a close (made only then).
        self._stopping: set[asyncio.Task[None]] | None = None
        # True while a frame is being handled: a drain waits for the end of it, so the
        # answer to a send in flight (its ``sent``) goes out before the close. The waiter
        # exists only while a drain waits (an asyncio.Event per socket costs ~1 KiB).
        self._busy = False
        self._idle_waiter: asyncio.Future[None] | None = None

    async def open(self) -> None:
        """Registered after hello so that no event precedes it; whatever is published in
        between is in the sync queue, which the client reads next. The extensions exist
        already: events may arrive while registration awaits Redis."""
        await realtime.get_hub().register(self)
        for _, extension in self._extensions:
            await extension.start()
        if lifecycle.is_draining():  # got in while the process stopped listening
            await self.drain()

    # --- outgoing --------------------------------------------------------------------------
    def send_frame(self, frame: Any) -> None:
        self.send_bytes(orjson.dumps(frame))

    def send_bytes(self, data: bytes) -> None:
        """Queue a frame for the socket; never waits for the peer."""
        if self._closed:
            return
        if not self._outbox.put(data):
            # The device reads slower than it is written to. What it missed is in its sync
            # queue: it reconnects and syncs from its cursor.
            self.close(protocol.CLOSE_TOO_SLOW, drop_queued=True)

    async def deliver(self, seq: int | None, frame: bytes) -> None:
        """Called by the hub for every event addressed to this device's user. Only queues
        frames: one slow socket never delays the hub's delivery to the others."""
        if seq is None:
            if all(extension.accepts(frame) for _, extension in self._extensions):
                self.send_bytes(frame)
            return
        self.stream.deliver(seq, frame)

    async def resync(self) -> None:
        await self.stream.resync()

    # --- incoming --------------------------------------------------------------------------
    async def on_frame(self, raw: str | bytes) -> None:
        if self._closed:
            return
        for _, extension in self._extensions:
            extension.touch()  # any frame is a heartbeat; no I/O here
        verdict = self._flood.check()
        if verdict is Verdict.CLOSE:
            self.send_frame(protocol.error_frame("flood", "Too many frames; closing."))
            self.close(protocol.CLOSE_ABUSIVE)
        elif verdict is Verdict.DROP:
            self.send_frame(protocol.error_frame("rate_limited", "Too many frames; slow down."))
        else:
            self._busy = True
            try:
                await self._router.route(raw)
            finally:
                self._busy = False
                if self._idle_waiter is not None and not self._idle_waiter.done():
                    self._idle_waiter.set_result(None)

    # --- closing ---------------------------------------------------------------------------
    def close(self, code: int, *, drop_queued: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self.stream.close()
        self.unacked.close()
        # After the frames already queued (the error frame that explains the close).
        self._outbox.close(code, drop_queued=drop_queued)
        # Offline at once (logout, revocation, heartbeat timeout), not when the peer
        # acknowledges the close, which a dead peer never does. A task: this may run
        # inside the hub's dispatch, which must not wait for the database.
        stopping = self._stopping = set()
        for _, extension in self._extensions:
            task = asyncio.create_task(extension.stop())
            stopping.add(task)
            task.add_done_callback(stopping.discard)

    async def close_silent(self) -> None:
        """No frame came within the heartbeat timeout (the presence tracker found out)."""
        self.send_frame(
            protocol.error_frame("heartbeat_timeout", "No frame within the heartbeat timeout.")
        )
        self.close(protocol.CLOSE_HEARTBEAT_TIMEOUT)

    async def close_revoked(self) -> None:
        """The device was revoked or its user deactivated (the hub, the presence tick or a
        refused send found out)."""
        self.send_frame(protocol.error_frame("revoked", "This device was logged out."))
        self.close(protocol.CLOSE_REVOKED)

    async def drain(self) -> None:
        """This process is draining: once the frame in hand is answered, tell the client
        to reconnect elsewhere and close with 4012. Frames still queued behind it are not
        read: unacknowledged sends are re-sent by the client on its next connection."""
        while self._busy:
            if self._idle_waiter is None or self._idle_waiter.done():
                self._idle_waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._idle_waiter)  # drains may wait together
        if self._closed:
            return
        self.send_frame(
            protocol.error_frame(
                "server_draining",
                "This server is restarting; reconnect now (GET /api/v1/chat-servers/best).",
            )
        )
        self.close(protocol.CLOSE_SERVER_DRAINING)

    async def disconnected(self) -> None:
        """The socket is gone: report unacknowledged events, store the ack, leave."""
        self._closed = True
        self.stream.stop()
        # Gone with events it never acknowledged (app killed or suspended): push now.
        await self.unacked.disconnected(self.stream.cursor)
        self._outbox.stop()
        await realtime.get_hub().unregister(self)
        await self.acks.stop()
        for _, extension in self._extensions:
            await extension.stop()
