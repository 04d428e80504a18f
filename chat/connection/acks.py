"""The ack flusher: a device's delivery cursor, written at most about once a second.

A device acknowledges what it received (``ack`` frames, often one per event). The highest
acknowledged ``seq`` is kept here and stored on the connection's flush slot: sockets flush
on shared clock ticks, so the flushes of many devices reach the process's ack coalescer
together (400 devices acking once a second on their own clocks cost 400 transactions a
second). There are ACK_FLUSH_SLOTS ticks per ACK_FLUSH_SECONDS, a device keeping to its
slot: one burst of every device's ack stalled deliveries behind it.
"""

from __future__ import annotations

import asyncio
import logging

from chat.services import sync as sync_service
from chatproject.coalesce import PerLoop

logger = logging.getLogger(__name__)

ACK_FLUSH_SECONDS = 1.0
ACK_FLUSH_SLOTS = 10

# The acks of all the process's devices due on one tick are stored together.
_ack_coalesced: PerLoop[sync_service.Ack, None] = PerLoop(
    sync_service.acknowledge_many, max_batch=500
)


def seconds_to_slot(device_id: int, now: float) -> float:
    """From ``now`` (the loop's clock) to the device's next flush tick, in (0, period]."""
    slot = (device_id % ACK_FLUSH_SLOTS) * (ACK_FLUSH_SECONDS / ACK_FLUSH_SLOTS)
    return ACK_FLUSH_SECONDS - (now - slot) % ACK_FLUSH_SECONDS


class AckFlusher:
    __slots__ = (
        "_task",
        "acked",
        "device_id",
        "flushed",
        "user_id",
    )

    def __init__(self, *, user_id: int, device_id: int, delivered_seq: int) -> None:
        self.user_id = user_id
        self.device_id = device_id
        # The highest seq the device acknowledged, and the highest one stored.
        self.acked = self.flushed = delivered_seq
        self._task: asyncio.Task[None] | None = None

    def ack(self, seq: int, *, newest_seq: int) -> None:
        """Take an ack; never past ``newest_seq``, what exists (the default ``after`` of
        sync must not skip events). Stored on the connection's next slot."""
        self.acked = max(self.acked, min(seq, newest_seq))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_on_slot())

    async def _flush_on_slot(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(seconds_to_slot(self.device_id, loop.time()))
        await self.flush()

    async def flush(self) -> None:
        """Store the acked seq if it moved. A failure is logged, and the next flush (the
        next ack's, or the disconnect's) stores the range again from the last stored seq."""
        if self.acked > self.flushed:
            previous, self.flushed = self.flushed, self.acked
            try:
                await _ack_coalesced(
                    sync_service.Ack(self.user_id, self.device_id, self.acked, previous)
                )
            except Exception:
                logger.exception("chat connection: storing the delivery cursor failed")
                self.flushed = min(self.flushed, previous)

    async def stop(self) -> None:
        """The connection is gone: store what is acknowledged now, not on the slot."""
        if self._task is not None:
            self._task.cancel()
        await self.flush()
