"""Message ids: unique, increasing, decodable to their time, distinct across workers, and
safe when the clock misbehaves."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from django.conf import settings as django_settings
from pytest_django.fixtures import Settings as SettingsFixture

from chat import ids
from chat.ids import (
    EPOCH_MS,
    LEASE_KEY_PREFIX,
    ClockMovedBackwardsError,
    RedisWorkerLease,
    SnowflakeGenerator,
    datetime_to_min_id,
    id_to_datetime,
    next_id,
    worker_id_of,
)
from chatproject.redis_connections import SyncRedis, connections

needs_redis = pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL")


class ScriptedClock:
    """Returns the given milliseconds (after the id epoch) in turn, then repeats the last."""

    def __init__(self, *ms_after_epoch: int) -> None:
        self._values = [EPOCH_MS + ms for ms in ms_after_epoch]
        self.calls = 0

    def __call__(self) -> int:
        value = self._values[min(self.calls, len(self._values) - 1)]
        self.calls += 1
        return value


class SteppingClock:
    """A clock that moves one millisecond every ``calls_per_ms`` readings."""

    def __init__(self, calls_per_ms: int) -> None:
        self._calls_per_ms = calls_per_ms
        self._calls = 0

    def __call__(self) -> int:
        self._calls += 1
        return EPOCH_MS + 1_000_000 + self._calls // self._calls_per_ms


class RecordedSleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fresh_default_generator() -> Iterator[None]:
    ids.reset_default_generator()
    yield
    ids.reset_default_generator()


def test_ids_strictly_increase_within_a_process() -> None:
    made = [next_id() for _ in range(20_000)]

    assert all(earlier < later for earlier, later in pairwise(made))


def test_200_000_ids_made_as_fast_as_possible_are_unique_and_fit_a_signed_bigint() -> None:
    generator = SnowflakeGenerator(5)

    made = [generator.next_id() for _ in range(200_000)]

    assert len(set(made)) == 200_000
    assert made == sorted(made)
    assert all(0 < made_id < 2**63 for made_id in (made[0], made[-1]))
    assert {worker_id_of(made[0]), worker_id_of(made[-1])} == {5}


def test_ids_made_by_many_threads_at_once_are_unique() -> None:
    generator = SnowflakeGenerator(9)
    per_thread: list[list[int]] = [[] for _ in range(8)]

    def make(into: list[int]) -> None:
        into.extend(generator.next_id() for _ in range(20_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({made_id for made in per_thread for made_id in made}) == 160_000
    assert all(made == sorted(made) for made in per_thread)


def test_an_id_decodes_to_the_time_it_was_made() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    made = next_id()
    after = datetime.now(UTC)

    assert before <= id_to_datetime(made) <= after


def test_min_id_of_a_time_separates_ids_made_before_it_from_ids_made_after() -> None:
    generator = SnowflakeGenerator(1023, clock_ms=ScriptedClock(5_000, 5_000, 5_001))
    earlier = [generator.next_id(), generator.next_id()]
    later = generator.next_id()
    boundary = datetime.fromtimestamp((EPOCH_MS + 5_001) / 1000, UTC)

    min_id = datetime_to_min_id(boundary)

    assert max(earlier) < min_id <= later
    assert id_to_datetime(min_id) == boundary
    assert id_to_datetime(later) == boundary


def test_min_id_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        datetime_to_min_id(datetime(2025, 6, 1))  # noqa: DTZ001 (the point of the test)


def test_two_workers_never_collide_even_in_the_same_milliseconds() -> None:
    # Both see exactly the same clock readings, so their ids differ only by worker bits.
    first = SnowflakeGenerator(1, clock_ms=SteppingClock(calls_per_ms=500))
    second = SnowflakeGenerator(2, clock_ms=SteppingClock(calls_per_ms=500))

    from_first = {first.next_id() for _ in range(50_000)}
    from_second = {second.next_id() for _ in range(50_000)}

    assert len(from_first) == len(from_second) == 50_000
    assert from_first.isdisjoint(from_second)


def test_more_than_4096_ids_in_one_millisecond_continue_in_the_next_one() -> None:
    clock = ScriptedClock(*([7_000] * 4097), 7_001)
    generator = SnowflakeGenerator(3, clock_ms=clock)

    made = [generator.next_id() for _ in range(4097)]

    assert len(set(made)) == 4097
    assert made == sorted(made)
    assert id_to_datetime(made[4095]) == id_to_datetime(made[0])
    assert id_to_datetime(made[4096]) - id_to_datetime(made[0]) == timedelta(milliseconds=1)


def test_clock_going_backwards_waits_for_it_and_keeps_ids_increasing() -> None:
    sleeps = RecordedSleeps()
    # An NTP step back by 30 ms, after which the clock catches up.
    clock = ScriptedClock(10_000, 10_030, 10_000, 10_010, 10_029, 10_030, 10_031)
    generator = SnowflakeGenerator(4, clock_ms=clock, sleep=sleeps)

    made = [generator.next_id() for _ in range(4)]

    assert made == sorted(made)
    assert len(set(made)) == 4
    assert sleeps  # it waited rather than reusing a past millisecond
    assert id_to_datetime(made[2]) >= id_to_datetime(made[1])


def test_clock_stuck_in_the_past_gives_up_after_the_bounded_wait() -> None:
    sleeps = RecordedSleeps()
    generator = SnowflakeGenerator(
        4, clock_ms=ScriptedClock(60_000, 1_000), sleep=sleeps, max_clock_backwards_wait=5.0
    )
    generator.next_id()

    with pytest.raises(ClockMovedBackwardsError):
        generator.next_id()

    assert 5.0 <= sum(sleeps) < 5.2


def _id_of(ms_after_epoch: int, worker_id: int, sequence: int = 0) -> int:
    return (ms_after_epoch << ids.TIMESTAMP_SHIFT) | (worker_id << ids.WORKER_ID_SHIFT) | sequence


def test_an_id_after_a_floor_from_a_clock_ahead_moves_this_worker_forward_without_waiting() -> None:
    sleeps = RecordedSleeps()
    generator = SnowflakeGenerator(3, clock_ms=ScriptedClock(10_000), sleep=sleeps)
    generator.next_id()
    floor = _id_of(10_050, 2, 12)  # another process, 50 ms ahead of this clock

    after = generator.next_id_after(floor)
    following = [generator.next_id() for _ in range(5000)]  # the clock still says 10 000

    assert after > floor
    assert worker_id_of(after) == 3
    assert id_to_datetime(after) == id_to_datetime(floor)
    assert following == sorted(following)
    assert following[0] > after
    assert len(set(following)) == 5000
    assert not sleeps  # moved forward by a floor, not a clock step back: nothing to wait for


@pytest.mark.parametrize(
    ("floor_worker", "floor_sequence", "expected_ms", "expected_sequence"),
    [
        (2, 4000, 10_000, 0),  # a lower worker in this millisecond: ours are already above
        (9, 0, 10_001, 0),  # a higher worker in this millisecond: the next one
        (5, 41, 10_000, 42),  # our own number (an earlier lease holder): the next sequence
        (5, ids.MAX_SEQUENCE, 10_001, 0),
    ],
)
def test_the_id_after_a_floor_is_the_smallest_of_this_worker_above_it(
    floor_worker: int, floor_sequence: int, expected_ms: int, expected_sequence: int
) -> None:
    generator = SnowflakeGenerator(5, clock_ms=ScriptedClock(9_990))
    floor = _id_of(10_000, floor_worker, floor_sequence)

    assert generator.next_id_after(floor) == _id_of(expected_ms, 5, expected_sequence)


def test_a_floor_below_the_generator_changes_nothing() -> None:
    generator = SnowflakeGenerator(5, clock_ms=ScriptedClock(10_000, 10_000, 10_001))
    first = generator.next_id()

    assert generator.next_id_after(_id_of(9_000, 9)) == first + 1
    assert generator.next_id_after(first) == _id_of(10_001, 5)


def test_ids_after_floors_from_many_threads_are_unique_and_above_their_floors() -> None:
    generator = SnowflakeGenerator(4)
    made: list[list[tuple[int, int]]] = [[] for _ in range(8)]

    def make(into: list[tuple[int, int]]) -> None:
        floor = 0
        for _ in range(2000):
            made_id = generator.next_id_after(floor)
            into.append((floor, made_id))
            floor = made_id + (1 << ids.TIMESTAMP_SHIFT)  # as if another worker was 1 ms ahead

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    pairs = [pair for into in made for pair in into]
    assert all(made_id > floor for floor, made_id in pairs)
    assert len({made_id for _, made_id in pairs}) == len(pairs)


def test_worker_ids_outside_10_bits_are_refused() -> None:
    with pytest.raises(ValueError, match="worker id"):
        SnowflakeGenerator(1024)


def test_configured_worker_id_is_used(
    settings: SettingsFixture, fresh_default_generator: None
) -> None:
    settings.ID_WORKER_ID = 77

    assert worker_id_of(next_id()) == 77


def test_embedded_single_process_uses_worker_0(
    settings: SettingsFixture, fresh_default_generator: None
) -> None:
    settings.ID_WORKER_ID = -1
    settings.REDIS_URL = ""

    assert worker_id_of(next_id()) == 0


# --- Redis leases ---------------------------------------------------------------------------


@pytest.fixture
def redis_client() -> Iterator[SyncRedis]:
    client = connections.new_sync_client()
    yield client
    client.close()


@needs_redis
def test_two_processes_leasing_worker_numbers_get_different_ones(
    redis_client: SyncRedis,
) -> None:
    first = RedisWorkerLease(django_settings.REDIS_URL)
    second = RedisWorkerLease(django_settings.REDIS_URL)
    try:
        assert first.worker_id != second.worker_id
        assert redis_client.get(f"{LEASE_KEY_PREFIX}{first.worker_id}") == first.owner.encode()
        assert 0 < redis_client.ttl(f"{LEASE_KEY_PREFIX}{first.worker_id}") <= 300
    finally:
        first.release()
        second.release()

    assert redis_client.exists(f"{LEASE_KEY_PREFIX}{first.worker_id}") == 0


@needs_redis
def test_renewing_keeps_the_number_and_extends_the_lease(redis_client: SyncRedis) -> None:
    lease = RedisWorkerLease(django_settings.REDIS_URL, ttl_seconds=30)
    key = f"{LEASE_KEY_PREFIX}{lease.worker_id}"
    try:
        redis_client.expire(key, 5)

        assert lease.renew() == int(key.removeprefix(LEASE_KEY_PREFIX))
        assert redis_client.ttl(key) > 5
    finally:
        lease.release()


@needs_redis
def test_a_lease_taken_over_by_someone_else_is_replaced_by_a_new_number(
    redis_client: SyncRedis,
) -> None:
    lease = RedisWorkerLease(django_settings.REDIS_URL)
    lost = lease.worker_id
    # Our lease expired (e.g. the process was paused) and another process took the number.
    redis_client.set(f"{LEASE_KEY_PREFIX}{lost}", "another process")
    try:
        replacement = lease.renew()

        assert replacement != lost
        assert redis_client.get(f"{LEASE_KEY_PREFIX}{lost}") == b"another process"
        assert redis_client.get(f"{LEASE_KEY_PREFIX}{replacement}") == lease.owner.encode()
    finally:
        lease.release()
    # Releasing gives back only what is ours.
    assert redis_client.get(f"{LEASE_KEY_PREFIX}{lost}") == b"another process"


@needs_redis
def test_production_ids_use_a_worker_number_leased_from_redis(
    settings: SettingsFixture, fresh_default_generator: None, redis_client: SyncRedis
) -> None:
    settings.ID_WORKER_ID = -1

    worker_id = worker_id_of(next_id())

    assert redis_client.exists(f"{LEASE_KEY_PREFIX}{worker_id}") == 1
