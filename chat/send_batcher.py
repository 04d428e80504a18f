"""Group commit for messages sent over this process's WebSockets.

Every send costs a database transaction (a handful of statements and a commit) and a Redis
round trip; done one by one from each socket, those round trips, not the CPU, bound the
rate. The batcher queues sends from all sockets of the event loop and hands whatever has
accumulated to ``send_messages`` in one worker-thread call: one transaction and one
publish round trip for the whole batch. Nothing waits for a timer: when the queue is empty
a send goes alone at once, and under load the batches grow by themselves while the
previous one is in the database (the latency of one batch, not of a queue of them).

One batch is in flight per process, so sends are stored in the order they arrived here:
a device's messages keep their order in sequence numbers as well as in ids.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from chat.services.messages import SendRequest, SendResult, send_messages
from chatproject.errors import ServiceError

_Waiter = tuple[SendRequest, "asyncio.Future[SendResult]"]


class SendBatcher:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_batch: int) -> None:
        self.loop = loop
        self.max_batch = max_batch
        self._queue: list[_Waiter] = []
        self._worker: asyncio.Task[None] | None = None

    async def send(self, request: SendRequest) -> SendResult:
        """Store and publish one message; raises the request's ServiceError."""
        future: asyncio.Future[SendResult] = self.loop.create_future()
        self._queue.append((request, future))
        if self._worker is None or self._worker.done():
            # The reference is kept on self: a collected task would strand its waiters.
            self._worker = self.loop.create_task(self._drain(), name="chat-send-batcher")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            await self._run(batch)

    async def _run(self, batch: list[_Waiter]) -> None:
        try:
            outcomes = await _in_thread(send_messages, [request for request, _ in batch])
        except Exception as error:  # noqa: BLE001 (each waiter gets the failure, not the batcher)
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the socket went away while waiting
                continue
            if isinstance(outcome, ServiceError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    return await database_sync_to_async(func, thread_sensitive=False)(*args)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SendBatcher] = (
    weakref.WeakKeyDictionary()
)


def get_send_batcher() -> SendBatcher:
    """The batcher of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = SendBatcher(loop, settings.SEND_BATCH_MAX)
    return batcher
