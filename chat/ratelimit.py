"""Per-user fixed-window rate limits, shared by every process (Redis) or in-process (embedded).

One Redis round trip per check, or per batch of checks: a script that increments each
window's counter and gives a new one its expiry, called once per bucket of the subjects
(``chatproject/redis_keys.py``) in one pipeline. A counter is
``{rl:<b>}:<scope>:<subject>:<window>``, ``b`` the subject's bucket: the counters one
script call touches share that hash tag, so one Redis Cluster slot; on a cluster the
pipeline costs one round trip per master at most.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from django.conf import settings

from chatproject.errors import RateLimited
from chatproject.redis_connections import ScriptCall, connections
from chatproject.redis_keys import positions_by_bucket, tag

_lock = threading.Lock()
_local_counts: dict[str, tuple[int, int]] = {}  # key -> (window number, count)


# KEYS: one counter per subject (one bucket); ARGV[1]: expiry in seconds, ARGV[2..]: each
# key's count.
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


def _redis_totals(
    scope: str, wanted: dict[int | str, int], *, window: int, window_seconds: int
) -> dict[int | str, int]:
    """Add each subject's count to its counter in Redis; the counters' new totals."""
    subjects = list(wanted)
    groups = list(positions_by_bucket(subjects).items())
    calls: list[ScriptCall] = [
        (
            _COUNT_LUA,
            [f"{tag('rl', bucket)}:{scope}:{subjects[p]}:{window}" for p in positions],
            [window_seconds + 1, *(wanted[subjects[p]] for p in positions)],
        )
        for bucket, positions in groups
    ]
    totals: dict[int | str, int] = {}
    for (_, positions), replies in zip(groups, connections.eval_many(calls), strict=True):
        totals.update(
            (subjects[p], int(total)) for p, total in zip(positions, replies, strict=True)
        )
    return totals


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
        totals = _redis_totals(scope, wanted, window=window, window_seconds=window_seconds)
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
