"""Coalescing the database work of many sockets into one worker-thread call.

Each WebSocket that connects, or sends, needs a little database work. Done per socket, a
storm of them costs a thread hop and a few round trips each, and the threads then queue
for the database and the GIL. A ``Coalescer`` wraps a batch function
(``list of inputs -> list of outcomes``): callers await one input each; while a batch is
in a worker thread, new inputs queue up, and the next batch takes all of them. Nothing
waits for a timer: an idle server runs a lone input at once, and under load the batches
grow by themselves. One batch runs at a time per event loop, so inputs are handled in
the order they arrived.

``AsyncCoalescer`` does the same for work that already runs on the event loop (an async
Redis pipeline): no thread hop, one round trip for what queued meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from chatproject.db_threads import in_db_thread
from chatproject.per_loop import PerLoopRegistry

In = TypeVar("In")
Out = TypeVar("Out")


class _Batching(Generic[In, Out]):
    """The queue and the one worker task; subclasses say how a batch is run."""

    def __init__(self, *, max_batch: int) -> None:
        self.max_batch = max_batch
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def __call__(self, item: In) -> Out:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._queue.append((item, future))
        if self._worker is None or self._worker.done():
            # The reference is kept on self: a collected task would strand its waiters.
            self._worker = loop.create_task(self._drain(), name="coalescer")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            await self._run(batch)

    async def _outcomes(self, items: list[In]) -> Sequence[Out | BaseException]:
        raise NotImplementedError

    async def _run(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            outcomes = await self._outcomes([item for item, _ in batch])
        except Exception as error:  # noqa: BLE001 (every waiter gets the failure)
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller went away (its socket closed) meanwhile
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


class Coalescer(_Batching[In, Out]):
    """``await coalescer(item)`` returns ``batch_function([..., item, ...])[its index]``, or
    raises it when that outcome is an exception; the batch runs in a worker thread."""

    def __init__(
        self,
        batch_function: Callable[[list[In]], Sequence[Out | BaseException]],
        *,
        max_batch: int,
    ) -> None:
        super().__init__(max_batch=max_batch)
        self.batch_function = batch_function

    async def _outcomes(self, items: list[In]) -> Sequence[Out | BaseException]:
        return await in_db_thread(self.batch_function, items)


class AsyncCoalescer(_Batching[In, Out]):
    """The same, for an async batch function run on the event loop itself."""

    def __init__(
        self,
        batch_function: Callable[[list[In]], Awaitable[Sequence[Out | BaseException]]],
        *,
        max_batch: int,
    ) -> None:
        super().__init__(max_batch=max_batch)
        self.batch_function = batch_function

    async def _outcomes(self, items: list[In]) -> Sequence[Out | BaseException]:
        return await self.batch_function(items)


class PerLoop(Generic[In, Out]):
    """One Coalescer per event loop (a server process has one; tests make many)."""

    def __init__(
        self,
        batch_function: Callable[[list[In]], Sequence[Out | BaseException]],
        *,
        max_batch: Callable[[], int] | int,
    ) -> None:
        self.batch_function = batch_function
        self.max_batch = max_batch
        self._by_loop: PerLoopRegistry[Coalescer[In, Out]] = PerLoopRegistry(self._new_coalescer)

    def _new_coalescer(self, _loop: asyncio.AbstractEventLoop) -> Coalescer[In, Out]:
        size = self.max_batch() if callable(self.max_batch) else self.max_batch
        return Coalescer(self.batch_function, max_batch=size)

    async def __call__(self, item: In) -> Out:
        return await self._by_loop.get()(item)
