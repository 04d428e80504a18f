"""One value per asyncio event loop: the single registry behind every per-loop singleton.

A server process runs one loop for its lifetime, but tests, ``async_to_sync`` calls and
management commands make loops that close. Entries are weak-keyed by loop, and entries of
loops that have closed are dropped (and handed to ``on_drop``) whenever a new loop first
asks, so a closed loop's value (a Redis pool, a hub) never outlives it for long.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoopRegistry(Generic[T]):
    def __init__(
        self,
        factory: Callable[[asyncio.AbstractEventLoop], T],
        *,
        on_drop: Callable[[T], None] | None = None,
    ) -> None:
        self._factory = factory
        self._on_drop = on_drop
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()  # loops of several threads may ask at once

    def get(self) -> T:
        """The running loop's value, created on first use."""
        loop = asyncio.get_running_loop()
        value = self._by_loop.get(loop)
        if value is None:
            self.drop_closed()
            with self._lock:
                value = self._by_loop.get(loop)
                if value is None:
                    value = self._by_loop[loop] = self._factory(loop)
        return value

    def live(self) -> list[T]:
        """The values of loops that are still open."""
        return [value for loop, value in list(self._by_loop.items()) if not loop.is_closed()]

    def drop_closed(self) -> None:
        with self._lock:
            closed = [loop for loop in list(self._by_loop) if loop.is_closed()]
            dropped = [self._by_loop.pop(loop) for loop in closed]
        if self._on_drop is not None:
            for value in dropped:
                self._on_drop(value)

    def clear(self) -> None:
        """Forget every entry (settings changed); open loops make new values on next use.
        Values of open loops are not handed to ``on_drop``: they may still be in use."""
        self.drop_closed()
        with self._lock:
            self._by_loop.clear()

    def __len__(self) -> int:
        return len(self._by_loop)
