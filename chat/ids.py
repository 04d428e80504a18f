"""Message ids: 64-bit, time-sortable, unique across processes (Snowflake layout).

Bit layout, most significant first::

    | 1 bit | 41 bits                          | 10 bits   | 12 bits            |
    |   0   | milliseconds since 2025-01-01 UTC | worker id | sequence in the ms |

* The sign bit is always 0, so ids fit a signed BIGINT and JSON numbers stay positive.
* 41 bits of milliseconds last until about 2094.
* The worker id (0-1023) keeps two processes from ever producing the same id. It comes
  from ``settings.ID_WORKER_ID`` when that is >= 0; otherwise, with ``settings.REDIS_URL``
  set, a number is leased from Redis (``SET idgen:worker:{n} <owner> NX EX 300``, renewed
  every 60 s by a daemon thread, re-leased if it was lost); otherwise (embedded, one
  process) it is 0.
* The sequence allows 4096 ids per millisecond per worker; the 4097th waits for the next
  millisecond.

Ids therefore sort by creation time (to the millisecond), which is what history paging and
"newest message" ordering rely on. If the clock goes backwards (e.g. an NTP step), the
generator waits for it to catch up rather than risk a duplicate, and gives up with
``ClockMovedBackwardsError`` after ``MAX_CLOCK_BACKWARDS_WAIT`` seconds.

``next_id_after(floor)`` makes an id greater than ``floor`` (a conversation's newest id, read
under its lock by the send path): if this worker's next id would not be, the generator
moves its own time forward to ``floor``'s millisecond (or the next) and goes on from
there without waiting for the wall clock, so ids in one conversation increase in commit
order even across processes whose clocks differ by a few milliseconds.

``next_id()`` uses a process-wide generator created on first use (never at import, so
importing this module touches neither settings nor Redis); a forked child gets its own.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings

from chatproject.backends import Backend
from chatproject.redis_connections import connections

logger = logging.getLogger(__name__)

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
EPOCH_MS = int(EPOCH.timestamp() * 1000)

TIMESTAMP_BITS = 41
WORKER_ID_BITS = 10
SEQUENCE_BITS = 12

MAX_WORKER_ID = (1 << WORKER_ID_BITS) - 1  # 1023
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1  # 4095
MAX_TIMESTAMP = (1 << TIMESTAMP_BITS) - 1
WORKER_ID_SHIFT = SEQUENCE_BITS
TIMESTAMP_SHIFT = SEQUENCE_BITS + WORKER_ID_BITS

MAX_CLOCK_BACKWARDS_WAIT = 5.0  # seconds

LEASE_KEY_PREFIX = "idgen:worker:"
LEASE_TTL_SECONDS = 300
LEASE_RENEW_INTERVAL_SECONDS = 60


class ClockMovedBackwardsError(RuntimeError):
    """The wall clock stayed behind the last issued id's time for too long."""


class NoWorkerIdAvailableError(RuntimeError):
    """All 1024 worker numbers are leased by other processes."""


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class SnowflakeGenerator:
    """Thread-safe generator of ids for one worker id.

    ``worker_id`` is either a fixed number or a callable returning the current one (a
    Redis lease may move to another number). ``clock_ms`` and ``sleep`` exist so tests can
    play with time.
    """

    def __init__(
        self,
        worker_id: int | Callable[[], int],
        *,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        sleep: Callable[[float], None] = time.sleep,
        max_clock_backwards_wait: float = MAX_CLOCK_BACKWARDS_WAIT,
    ) -> None:
        if isinstance(worker_id, int):
            _check_worker_id(worker_id)
        self._worker_id = worker_id
        self._clock_ms = clock_ms
        self._sleep = sleep
        self._max_clock_backwards_wait = max_clock_backwards_wait
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_worker_id = -1
        self._sequence = 0
        self._lifted_ms = -1  # the last millisecond taken from a floor (next_id_after)

    @property
    def worker_id(self) -> int:
        worker_id = self._worker_id() if callable(self._worker_id) else self._worker_id
        _check_worker_id(worker_id)
        return worker_id

    def next_id(self) -> int:
        return self.next_id_after(-1)

    def next_id_after(self, floor: int) -> int:
        """A new id greater than ``floor`` and than every id this generator made before.

        ``floor`` is typically the newest id of a conversation, read under its row lock: the
        send path uses it so that ids in a conversation increase in commit order even when
        another process (whose clock may be a little ahead, or whose worker number is
        higher) made that id. When the next id would not be above ``floor``, the generator
        moves its own time forward to ``floor``'s millisecond (or the one after) and goes on
        from there: ids stay unique for this worker and never invent another worker's.
        """
        with self._lock:
            worker_id = self.worker_id
            now_ms = self._clock_ms()
            # Behind the last id: either our time was moved forward by a floor (go on from
            # there) or the wall clock stepped back (wait for it, as always).
            if now_ms < self._last_ms and self._last_ms > self._lifted_ms:
                now_ms = self._wait_for_clock(now_ms)
            ms, sequence = max(now_ms, self._last_ms), 0
            if ms == self._last_ms:
                sequence = (self._sequence + 1) & MAX_SEQUENCE
                # After 4096 ids in this millisecond, or when the worker number changed (a
                # lower number in the same millisecond would make a smaller id), move on to
                # the next millisecond so ids keep increasing.
                if sequence == 0 or worker_id != self._last_worker_id:
                    ms, sequence = self._next_millisecond(), 0
            if _compose(ms, worker_id, sequence) <= floor:
                ms, sequence = _first_above(floor, worker_id)
                self._lifted_ms = ms
            self._last_ms = ms
            self._last_worker_id = worker_id
            self._sequence = sequence
            return _compose(ms, worker_id, sequence)

    def close(self) -> None:
        """Release what the generator holds: nothing here (see ``ProcessGenerator``)."""

    def _next_millisecond(self) -> int:
        if self._last_ms <= self._lifted_ms:
            # Our time is a floor's, possibly ahead of the wall clock: do not wait for it.
            self._lifted_ms = self._last_ms + 1
            return self._lifted_ms
        now_ms = self._clock_ms()
        while now_ms <= self._last_ms:
            # Behind: sleep (bounded) until caught up; at the same millisecond: spin.
            now_ms = self._wait_for_clock(now_ms) if now_ms < self._last_ms else self._clock_ms()
        return now_ms

    def _wait_for_clock(self, now_ms: int) -> int:
        """Sleep until the clock is back at the last issued millisecond (bounded)."""
        behind_ms = self._last_ms - now_ms
        logger.warning("Clock moved backwards by %d ms; waiting for it to catch up", behind_ms)
        waited = 0.0
        while now_ms < self._last_ms:
            if waited >= self._max_clock_backwards_wait:
                raise ClockMovedBackwardsError(
                    f"clock is {self._last_ms - now_ms} ms behind the last issued id "
                    f"after waiting {waited:.1f} s"
                )
            pause = min((self._last_ms - now_ms) / 1000, 0.1)
            self._sleep(pause)
            waited += pause
            now_ms = self._clock_ms()
        return now_ms


def _compose(ms: int, worker_id: int, sequence: int) -> int:
    elapsed_ms = ms - EPOCH_MS
    if not 0 <= elapsed_ms <= MAX_TIMESTAMP:
        raise OverflowError(f"clock {ms} ms is outside the id range")
    return (elapsed_ms << TIMESTAMP_SHIFT) | (worker_id << WORKER_ID_SHIFT) | sequence


def _first_above(floor: int, worker_id: int) -> tuple[int, int]:
    """The (millisecond, sequence) of ``worker_id``'s smallest id greater than ``floor``."""
    floor_ms = EPOCH_MS + (floor >> TIMESTAMP_SHIFT)
    floor_worker = worker_id_of(floor)
    if worker_id > floor_worker:
        return floor_ms, 0
    if worker_id == floor_worker and floor & MAX_SEQUENCE < MAX_SEQUENCE:
        return floor_ms, (floor & MAX_SEQUENCE) + 1
    return floor_ms + 1, 0


def _check_worker_id(worker_id: int) -> None:
    if not 0 <= worker_id <= MAX_WORKER_ID:
        raise ValueError(f"worker id must be 0-{MAX_WORKER_ID}, got {worker_id}")


# --- Redis worker-id lease ----------------------------------------------------------------

# Extends the lease only if this process still owns it.
_RENEW_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('expire', KEYS[1], ARGV[2])
end
return 0
"""
# Deletes the lease only if this process still owns it.
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisWorkerLease:
    """A worker number leased from Redis, kept alive by a daemon thread.

    If a renewal finds the number taken by someone else (the lease expired, e.g. after a
    long pause of this process), a new number is leased; ids made with the new number
    cannot collide with the other owner's. If Redis is unreachable the current number is
    kept: a collision would at worst fail an insert on the message primary key, whereas
    refusing to make ids would stop every send.
    """

    def __init__(self, redis_url: str, *, ttl_seconds: int = LEASE_TTL_SECONDS) -> None:
        # Its own client (closed on release), with the configured socket timeouts: a
        # renewal must not hang on a silent Redis.
        self._client = connections.new_sync_client(redis_url)
        self._ttl_seconds = ttl_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.worker_id = self._lease_any()

    def _key(self, worker_id: int) -> str:
        return f"{LEASE_KEY_PREFIX}{worker_id}"

    def _lease_any(self) -> int:
        # A random starting point spreads processes that start together over the numbers.
        start = random.randrange(MAX_WORKER_ID + 1)  # noqa: S311 (not security-relevant)
        for offset in range(MAX_WORKER_ID + 1):
            candidate = (start + offset) % (MAX_WORKER_ID + 1)
            if self._client.set(self._key(candidate), self.owner, nx=True, ex=self._ttl_seconds):
                logger.info("Leased id worker number %d", candidate)
                return candidate
        raise NoWorkerIdAvailableError("all id worker numbers are leased")

    def renew(self) -> int:
        """Extend the lease, or lease a new number if it was lost; return the number."""
        with self._lock:
            renewed = self._client.eval(
                _RENEW_SCRIPT, 1, self._key(self.worker_id), self.owner, self._ttl_seconds
            )
            if not renewed:
                lost = self.worker_id
                self.worker_id = self._lease_any()
                logger.warning("Id worker lease %d was lost; now using %d", lost, self.worker_id)
            return self.worker_id

    def start_renewing(self, interval_seconds: float = LEASE_RENEW_INTERVAL_SECONDS) -> None:
        self._thread = threading.Thread(
            target=self._renew_forever, args=(interval_seconds,), name="id-lease", daemon=True
        )
        self._thread.start()

    def _renew_forever(self, interval_seconds: float) -> None:
        while not self._stop.wait(interval_seconds):
            try:
                self.renew()
            except Exception:  # keep the thread alive through Redis outages
                logger.exception("Could not renew the id worker lease %d", self.worker_id)

    def release(self) -> None:
        """Stop renewing and give the number back (only if still ours)."""
        self._stop.set()
        try:
            with self._lock:
                self._client.eval(_RELEASE_SCRIPT, 1, self._key(self.worker_id), self.owner)
        finally:
            self._client.close()


# --- the process-wide generator -----------------------------------------------------------


class ProcessGenerator(SnowflakeGenerator):
    """The default ``ID_GENERATOR_BACKEND``: the worker number is ``ID_WORKER_ID`` when that
    is >= 0, else leased from Redis when ``REDIS_URL`` is set, else 0 (one process)."""

    def __init__(self) -> None:
        self.lease: RedisWorkerLease | None = None
        configured: int = settings.ID_WORKER_ID
        if configured >= 0:
            super().__init__(configured)
        elif settings.REDIS_URL:
            lease = self.lease = RedisWorkerLease(settings.REDIS_URL)
            lease.start_renewing()
            super().__init__(lambda: lease.worker_id)
        else:
            super().__init__(0)

    def close(self) -> None:
        """Give back the leased number, if any."""
        if self.lease is None:
            return
        try:
            self.lease.release()
        except Exception:  # Redis down at shutdown: the lease simply expires
            logger.warning("Could not release the id worker lease", exc_info=True)


# A forked child forgets its parent's generator (same ms + same number = same ids) and
# leases its own; the parent's lease and renewal thread stay the parent's.
_generator: Backend[SnowflakeGenerator] = Backend(
    "ID_GENERATOR_BACKEND",
    base=SnowflakeGenerator,
    reset_on={"ID_WORKER_ID", "REDIS_URL"},
    close=lambda generator: generator.close(),
)


def default_generator() -> SnowflakeGenerator:
    """The process-wide generator (``ID_GENERATOR_BACKEND``), created on first use."""
    return _generator.get()


def next_id() -> int:
    """A new unique, time-sortable 64-bit id."""
    return default_generator().next_id()


def next_id_after(floor: int) -> int:
    """A new unique id greater than ``floor`` (see ``SnowflakeGenerator.next_id_after``)."""
    return default_generator().next_id_after(floor)


def reset_default_generator() -> None:
    """Drop the process-wide generator (and give back its lease); the next call makes a new one."""
    _generator.reset()


# --- decoding -----------------------------------------------------------------------------


def id_to_datetime(snowflake_id: int) -> datetime:
    """The creation time encoded in an id (millisecond precision, UTC)."""
    return EPOCH + timedelta(milliseconds=snowflake_id >> TIMESTAMP_SHIFT)


def datetime_to_min_id(moment: datetime) -> int:
    """The smallest id that can be made at ``moment``: ``id >= datetime_to_min_id(t)``
    selects exactly the ids made at or after ``t`` (to the millisecond)."""
    if moment.tzinfo is None:
        raise ValueError("datetime_to_min_id needs an aware datetime")
    elapsed_ms = (moment - EPOCH) // timedelta(milliseconds=1)
    if not 0 <= elapsed_ms <= MAX_TIMESTAMP:
        raise ValueError(f"{moment.isoformat()} is outside the id range")
    return elapsed_ms << TIMESTAMP_SHIFT


def worker_id_of(snowflake_id: int) -> int:
    """The worker number encoded in an id."""
    return (snowflake_id >> WORKER_ID_SHIFT) & MAX_WORKER_ID
