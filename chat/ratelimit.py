"""Per-user fixed-window rate limits, shared by every process (Redis) or in-process (embedded).

One Redis round trip per check: a pipeline that creates the window's counter with its
expiry if missing (SET NX EX) and increments it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings

from chatproject.errors import RateLimited

if TYPE_CHECKING:
    from redis import Redis

_lock = threading.Lock()
_local_counts: dict[str, tuple[int, int]] = {}  # key -> (window number, count)
_redis_client: Redis | None = None


def _redis() -> Redis:
    global _redis_client  # noqa: PLW0603 (one pooled client per process)
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return _redis_client


def hit(scope: str, subject: int | str, *, limit: int, window_seconds: int) -> None:
    """Count one action; raise RateLimited when ``limit`` is exceeded in the current window."""
    now = time.time()
    window = int(now // window_seconds)
    key = f"rl:{scope}:{subject}:{window}"
    if settings.REDIS_URL:
        pipe = _redis().pipeline(transaction=False)
        pipe.set(key, 0, ex=window_seconds + 1, nx=True)
        pipe.incr(key)
        count = int(pipe.execute()[1])
    else:
        with _lock:
            _previous_window, previous = _local_counts.get(key, (window, 0))
            count = previous + 1
            _local_counts[key] = (window, count)
            if len(_local_counts) > 100_000:
                stale = [k for k, (w, _) in _local_counts.items() if w < window]
                for k in stale:
                    del _local_counts[k]
    if count > limit:
        raise RateLimited(
            f"Too many {scope} actions; slow down.",
            retry_after=(window + 1) * window_seconds - now,
        )
