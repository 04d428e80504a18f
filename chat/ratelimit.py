"""Per-user fixed-window rate limits, shared by every process (Redis) or in-process (embedded).

One Redis round trip per check, or per batch of checks: a script that increments each
window's counter and gives a new one its expiry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from chatproject.errors import RateLimited
from chatproject.redis_connections import connections

_lock = threading.Lock()
_local_counts: dict[str, tuple[int, int]] = {}  # key -> (window number, count)


# KEYS: one counter per subject; ARGV[1]: expiry in seconds, ARGV[2..]: each key's count.
# Atomic, so a counter never exists without its expiry.
_COUNT_LUA = """
local totals = {}
for index, key in ipairs(KEYS) do
    local count = tonumber(ARGV[index + 1])
    local total = redis.call('INCRBY', key, count)
    if total == count then
        redis.call('EXPIRE', key, ARGV[1])
    end
    totals[index] = total
end
return totals
"""


def _count_script() -> Any:
    return connections.sync_script(_COUNT_LUA)


def hit_many(
    scope: str, subjects: Sequence[int | str], *, limit: int, window_seconds: int
) -> list[RateLimited | None]:
    """Count one action per item of ``subjects`` (repeats allowed), in one round trip.

    Returns, per item, the RateLimited error if that action exceeds ``limit``, else None.
    """
    now = time.time()
    window = int(now // window_seconds)
    wanted: dict[int | str, int] = {}
    for subject in subjects:
        wanted[subject] = wanted.get(subject, 0) + 1
    totals: dict[int | str, int] = {}
    if settings.REDIS_URL:
        keys = [f"rl:{scope}:{subject}:{window}" for subject in wanted]
        replies = _count_script()(keys=keys, args=[window_seconds + 1, *wanted.values()])
        totals = {subject: int(total) for subject, total in zip(wanted, replies, strict=True)}
    else:
        with _lock:
            for subject, count in wanted.items():
                key = f"rl:{scope}:{subject}:{window}"
                _previous_window, previous = _local_counts.get(key, (window, 0))
                totals[subject] = previous + count
                _local_counts[key] = (window, previous + count)
            if len(_local_counts) > 100_000:
                stale = [k for k, (w, _) in _local_counts.items() if w < window]
                for k in stale:
                    del _local_counts[k]
    # The n-th action of a subject in this call is number total - wanted + n in the window.
    position = {subject: totals[subject] - wanted[subject] for subject in wanted}
    outcome: list[RateLimited | None] = []
    for subject in subjects:
        position[subject] += 1
        outcome.append(
            RateLimited(
                f"Too many {scope} actions; slow down.",
                retry_after=(window + 1) * window_seconds - now,
            )
            if position[subject] > limit
            else None
        )
    return outcome
