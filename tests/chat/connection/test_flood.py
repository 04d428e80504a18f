"""The flood guard: a burst, then the rate; strikes in a row close; slowing down forgives."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chat.connection import flood
from chat.connection.flood import (
    ABUSE_CLOSE_AFTER,
    FRAME_BURST,
    FRAME_RATE_PER_SECOND,
    FloodGuard,
    Verdict,
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [500.0]
    monkeypatch.setattr(flood, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_a_burst_is_allowed_then_frames_are_dropped_until_tokens_come_back(
    clock: list[float],
) -> None:
    guard = FloodGuard()
    assert [guard.check() for _ in range(int(FRAME_BURST))] == [Verdict.ALLOW] * int(FRAME_BURST)
    assert guard.check() is Verdict.DROP

    clock[0] += 1 / FRAME_RATE_PER_SECOND  # one token back
    assert guard.check() is Verdict.ALLOW
    assert guard.check() is Verdict.DROP


def test_strikes_in_a_row_close_and_a_pause_forgives_them(clock: list[float]) -> None:
    guard = FloodGuard()
    for _ in range(int(FRAME_BURST)):
        guard.check()
    assert [guard.check() for _ in range(ABUSE_CLOSE_AFTER - 1)] == [Verdict.DROP] * (
        ABUSE_CLOSE_AFTER - 1
    )

    clock[0] += FRAME_BURST / FRAME_RATE_PER_SECOND  # the whole burst is back
    for _ in range(int(FRAME_BURST)):
        assert guard.check() is Verdict.ALLOW
    verdicts = [guard.check() for _ in range(ABUSE_CLOSE_AFTER)]
    assert verdicts == [Verdict.DROP] * (ABUSE_CLOSE_AFTER - 1) + [Verdict.CLOSE]
