"""Unacknowledged pushes: a device that was written events live and does not acknowledge
them within PUSH_UNACKED_DELAY may be an app suspended with its socket open, so chat
publishes ``hooks.DeliveryUnacknowledged`` (notifications pushes it). A socket that goes
away with events unacknowledged (app killed or frozen) is reported at once.

One timer per connection at a time: armed when an event is written live and none is
armed, so the per-event cost is one comparison.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from django.conf import settings

from chat import hooks
from chatproject.db_threads import in_db_thread

logger = logging.getLogger(__name__)


class UnackedPushTimer:
    __slots__ = (
        "_acked",
        "_closed",
        "_push",
        "_timer",
        "device_id",
        "user_id",
    )

    def __init__(self, *, user_id: int, device_id: int, acked: Callable[[], int]) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self._acked = acked
        self._timer: asyncio.TimerHandle | None = None
        self._push: asyncio.Task[None] | None = None
        self._closed = False

    def written(self, seq: int) -> None:
        """Events up to ``seq`` were written live: check their ack after the delay."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                settings.PUSH_UNACKED_DELAY, self._timeout, seq
            )

    def close(self) -> None:
        """The connection is closing: a timeout from now on reports nothing."""
        self._closed = True

    async def disconnected(self, written_seq: int) -> None:
        """Gone with a timer armed: report what was written up to ``written_seq`` now."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            await self._report(written_seq)

    def _timeout(self, seq: int) -> None:
        self._timer = None
        if not self._closed and self._acked() < seq:
            self._push = asyncio.create_task(self._report(seq))

    async def _report(self, seq: int) -> None:
        # Enqueueing may cost a broker round trip, so it runs in a thread like the
        # service calls.
        acked = self._acked()
        if acked >= seq:
            return
        try:
            await in_db_thread(
                hooks.publish,
                hooks.DeliveryUnacknowledged(
                    user_id=self.user_id,
                    device_id=self.device_id,
                    acked_seq=acked,
                    delivered_seq=seq,
                ),
            )
        except Exception:
            logger.exception("chat connection: queueing an unacknowledged-device push failed")
