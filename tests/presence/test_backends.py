"""The presence backends' contract (presence/backends/__init__.py): each transition is
reported exactly once, expired leases are swept by one process per interval."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.conf import settings

from presence.backends import Lease, PresenceBackend
from presence.backends.memory import MemoryPresence

NOW = 1_800_000_000.0


def _backends() -> list[str]:
    return ["memory", "redis"] if settings.REDIS_URL else ["memory"]


def _sweep(backend: PresenceBackend, now: float) -> list[tuple[int, float]]:
    time.sleep(0.005)  # past the previous sweep's 1 ms lock
    return backend.sweep(now=now, limit=100, lock_seconds=0.001)


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> Iterator[PresenceBackend]:
    if request.param == "redis":
        from presence.backends.redis import RedisPresence

        instance: PresenceBackend = RedisPresence()
    else:
        instance = MemoryPresence()
    instance.reset()
    yield instance
    instance.reset()


def test_first_connection_and_last_disconnection_are_the_only_transitions(
    backend: PresenceBackend,
) -> None:
    assert backend.connect(Lease(1, "a", NOW + 60), now=NOW) is True
    assert backend.connect(Lease(1, "b", NOW + 60), now=NOW) is False
    assert backend.online([1, 2], now=NOW) == {1}
    assert backend.disconnect(1, "a", now=NOW) is False
    assert backend.disconnect(1, "b", now=NOW) is True
    assert backend.disconnect(1, "b", now=NOW) is False  # reported once
    assert backend.online([1], now=NOW) == set()


def test_expired_leases_are_swept_once_with_their_last_expiry(
    backend: PresenceBackend,
) -> None:
    backend.connect(Lease(1, "dead", NOW + 10), now=NOW)
    backend.connect(Lease(2, "dead", NOW + 10), now=NOW)
    backend.connect(Lease(2, "alive", NOW + 100), now=NOW)
    assert _sweep(backend, NOW + 5) == []
    assert backend.online([1, 2], now=NOW + 11) == {2}  # reads never count expired leases
    assert _sweep(backend, NOW + 11) == [(1, NOW + 10)]
    assert backend.online([1, 2], now=NOW + 11) == {2}
    # The dead member was swept: its late disconnect is not a second transition.
    assert backend.disconnect(1, "dead", now=NOW + 12) is False


def test_only_one_sweep_per_interval_does_the_work(backend: PresenceBackend) -> None:
    backend.connect(Lease(1, "dead", NOW + 1), now=NOW)
    assert backend.sweep(now=NOW - 1, limit=100, lock_seconds=30) == []
    # Another process (or tick) within the interval: locked out, nothing is reported twice.
    assert backend.sweep(now=NOW + 2, limit=100, lock_seconds=30) == []


def test_refresh_extends_live_leases_and_reports_the_ones_that_are_gone(
    backend: PresenceBackend,
) -> None:
    backend.connect(Lease(1, "a", NOW + 10), now=NOW)
    missing = backend.refresh([Lease(1, "a", NOW + 50), Lease(3, "gone", NOW + 50)])
    assert missing == [Lease(3, "gone", NOW + 50)]
    assert backend.online([1, 3], now=NOW + 20) == {1}  # extended past its first expiry
    assert _sweep(backend, NOW + 20) == []


def test_a_new_connection_after_an_unswept_expiry_is_an_online_transition(
    backend: PresenceBackend,
) -> None:
    backend.connect(Lease(1, "dead", NOW + 10), now=NOW)
    assert backend.connect(Lease(1, "new", NOW + 80), now=NOW + 20) is True
    assert _sweep(backend, NOW + 21) == []
