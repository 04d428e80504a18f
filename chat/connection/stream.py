"""The device stream: every event with a ``seq`` reaches the device exactly once and in
order, whether it arrives live, out of order from concurrent senders, or has to be read
back from the device's sync queue (docs/architecture.md, "Delivery order and gap filling").

``cursor`` is the last seq written to the device. Until the device's first sync finishes
(``live``), events wait in ``pending``; once live, the next seq is written at once, a later
one waits in ``pending`` for GAP_FILL_DELAY_SECONDS, after which the gap is read from the
sync queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson

from chat import replies
from chat.services import sync as sync_service
from chatproject.db_threads import in_db_thread

# A seq gap not filled by a late live event within this time is read from the sync queue.
GAP_FILL_DELAY_SECONDS = 0.2
PENDING_LIMIT = 2_000
GAP_FILL_PAGE = 500


class DeviceStream:
    __slots__ = (
        "_catch_up_task",
        "_catching_up",
        "_closed",
        "_gap_timer",
        "_on_live_write",
        "_pending",
        "_write",
        "cursor",
        "live",
        "newest_seq",
        "user_id",
    )

    def __init__(
        self,
        *,
        user_id: int,
        newest_seq: int,
        write: Callable[[bytes], None],
        on_live_write: Callable[[int], None],
    ) -> None:
        self.user_id = user_id
        self.cursor = 0
        # The highest seq this connection knows exists (hello, events): acks are capped to it.
        self.newest_seq = newest_seq
        self.live = False
        self._write = write
        self._on_live_write = on_live_write
        self._pending: dict[int, bytes] = {}
        self._gap_timer: asyncio.TimerHandle | None = None
        self._catching_up = False
        self._catch_up_task: asyncio.Task[None] | None = None
        self._closed = False

    def deliver(self, seq: int, frame: bytes) -> None:
        """An event for the device: written now if it is next, else held."""
        self.newest_seq = max(self.newest_seq, seq)
        if not self.live or self._catching_up:
            if len(self._pending) < PENDING_LIMIT:
                self._pending[seq] = frame
            return
        if seq <= self.cursor:
            return
        if seq == self.cursor + 1:
            self.cursor = seq
            self._write(frame)
            self._flush_pending()
            self._on_live_write(self.cursor)
            return
        self._pending[seq] = frame
        self._arm_gap_timer()

    def synced(self, last_seq: int, *, has_more: bool) -> None:
        """A sync page up to ``last_seq`` was written; the last one makes the stream live."""
        self.newest_seq = max(self.newest_seq, last_seq)
        if not has_more:
            self.cursor = last_seq
            self.live = True
            self._flush_pending()
            if self._pending:
                self._arm_gap_timer()

    async def resync(self) -> None:
        """Live events may have been missed (the process's Redis subscription was down):
        read the sync queue after the cursor. Before the device is live, its own sync
        requests will read it anyway."""
        if self.live and not self._catching_up and not self._closed:
            await self._catch_up()

    def close(self) -> None:
        """The connection is closing: no more gap fills."""
        self._closed = True

    def stop(self) -> None:
        """The connection is gone: cancel the gap timer and a running gap fill."""
        self._closed = True
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        if self._catch_up_task is not None and not self._catch_up_task.done():
            self._catch_up_task.cancel()

    def _flush_pending(self) -> None:
        while self._pending:
            frame = self._pending.pop(self.cursor + 1, None)
            if frame is None:
                break
            self.cursor += 1
            self._write(frame)
        for stale in [s for s in self._pending if s <= self.cursor]:
            del self._pending[stale]
        if not self._pending and self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None

    def _arm_gap_timer(self) -> None:
        if self._gap_timer is None:
            self._gap_timer = asyncio.get_running_loop().call_later(
                GAP_FILL_DELAY_SECONDS, self._gap_timeout
            )

    def _gap_timeout(self) -> None:
        self._gap_timer = None
        if self._pending and not self._closed and not self._catching_up:
            self._catch_up_task = asyncio.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        """Fill a gap from the sync queue: everything after the cursor, then what was pending."""
        self._catching_up = True
        try:
            while not self._closed:
                page = await in_db_thread(
                    sync_service.sync_page, self.user_id, after_seq=self.cursor, limit=GAP_FILL_PAGE
                )
                if page.reset:
                    # What is missing was pruned: the device gets the reset page a sync
                    # would have given it, reloads, and goes on from there.
                    self.cursor = page.last_seq
                    self._write(orjson.dumps(replies.sync_page_frame(None, page)))
                    break
                for event in page.events:
                    if event["seq"] == self.cursor + 1:
                        self.cursor = event["seq"]
                        # A live frame held for this seq goes instead: for this device's
                        # own send, that is its ``sent`` reply.
                        live = self._pending.pop(self.cursor, None)
                        self._write(orjson.dumps(event) if live is None else live)
                if not page.has_more:
                    break
        finally:
            self._catching_up = False
        self._flush_pending()
        if self._pending and not self._closed:
            self._arm_gap_timer()
