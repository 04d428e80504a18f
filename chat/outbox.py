"""A connection's outgoing frames: a bounded queue and the one task that writes it.

Whoever produces a frame for a socket (the hub's fan-out, a reply to the device's own
request) only appends it here and never waits for the socket, so a peer that reads slowly
delays nobody else. The writer task awaits the ASGI ``send``; the ASGI specification has
no back-pressure signal, but the server we run makes ``send`` wait while the peer does
not read (uvicorn's ``websockets-sansio``, ``wsproto`` and ``websockets`` implementations
wait for the transport to drain, through asyncio's public ``pause_writing`` /
``resume_writing`` flow control), so the frames that cannot be written wait here, where
they are counted. Past ``WS_SEND_QUEUE_MAX_BYTES`` or ``WS_SEND_QUEUE_MAX_FRAMES`` the
queue refuses more and its owner closes the connection (4009); the events are in the
device's sync queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


class Outbox:
    # An idle socket has nothing queued: its deque (760 bytes empty) exists only while
    # frames wait, and slots spare the instance dict (memory per idle connection).
    __slots__ = ("_bytes", "_close_code", "_frames", "_send", "_writer")

    def __init__(self, send: AsgiSend) -> None:
        self._send = send
        self._frames: deque[bytes] | None = None
        self._bytes = 0
        self._close_code: int | None = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        return self._close_code is not None

    def put(self, data: bytes) -> bool:
        """Queue one frame; False (and nothing queued) when the queue is full or closing.
        A frame larger than the whole bound is still taken when nothing waits before it."""
        if self._close_code is not None:
            return True  # the connection is going away: nothing more is written, by design
        frames = self._frames
        if frames is None:
            frames = self._frames = deque()
        elif frames and (
            self._bytes + len(data) > settings.WS_SEND_QUEUE_MAX_BYTES
            or len(frames) >= settings.WS_SEND_QUEUE_MAX_FRAMES
        ):
            return False
        frames.append(data)
        self._bytes += len(data)
        self._start_writer()
        return True

    def close(self, code: int, *, drop_queued: bool = False) -> None:
        """Write what is queued (unless ``drop_queued``), then the close frame."""
        if self._close_code is not None:
            return
        self._close_code = code
        if drop_queued:
            self._drop_queued()
        self._start_writer()

    def stop(self) -> None:
        """The connection is gone: stop writing."""
        self._drop_queued()
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    def _drop_queued(self) -> None:
        self._frames = None
        self._bytes = 0

    def _start_writer(self) -> None:
        if self._writer is None or self._writer.done():
            # The reference is kept on self: an unreferenced task may be collected mid-way.
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._frames:
                data = self._frames.popleft()
                self._bytes -= len(data)
                await self._send({"type": "websocket.send", "text": data.decode()})
            self._frames = None  # empty: given back until the next frame
            if self._close_code is not None:
                await self._send({"type": "websocket.close", "code": self._close_code})
        except Exception:
            # The peer went away (the server raises on a closed socket); its disconnect follows.
            logger.debug("outbox: writing to a closed connection", exc_info=True)
            self._drop_queued()
        finally:
            # A finished task still holds its coroutine and result (~0.5 KiB per idle
            # socket): let it go. No frame can be waiting unwritten at this point: the loop
            # above ran until none was left, and put() refuses frames once closing.
            if self._writer is asyncio.current_task():
                self._writer = None
