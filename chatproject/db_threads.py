"""Running database work off the event loop, with the connection released afterwards.

Channels' ``database_sync_to_async`` calls ``close_old_connections()`` around the call, but
in its own frame, outside the context the function runs in: asgiref hands worker threads
the caller's context-local storage, and a connection opened inside the function was
measured to stay open (checked out of the pool) after the thread finished. With
``CONN_MAX_AGE=0`` and the PostgreSQL pool that leak exhausts the pool within minutes of
load. So the release happens inside the function's own frame.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
T = TypeVar("T")


def _releasing(func: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return run


async def in_db_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` in a worker thread (not thread-sensitive: calls from many sockets may
    run in parallel threads) and release its database connection when it returns."""
    result: T = await database_sync_to_async(_releasing(func), thread_sensitive=False)(
        *args, **kwargs
    )
    return result
