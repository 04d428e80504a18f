"""Frame flood control: a token bucket per connection.

A client may send FRAME_BURST frames at once and FRAME_RATE_PER_SECOND on average. A
frame beyond that is dropped with a ``rate_limited`` error (a strike); ABUSE_CLOSE_AFTER
strikes in a row close the connection (4008). Strikes are forgiven once the client slows
down enough for its burst to be back.
"""

from __future__ import annotations

import enum
import time

FRAME_RATE_PER_SECOND = 30.0
FRAME_BURST = 60.0
ABUSE_CLOSE_AFTER = 50


class Verdict(enum.Enum):
    ALLOW = "allow"
    DROP = "drop"
    CLOSE = "close"


class FloodGuard:
    __slots__ = (
        "_strikes",
        "_tokens",
        "_tokens_at",
    )

    def __init__(self) -> None:
        self._tokens = FRAME_BURST
        self._tokens_at = time.monotonic()
        self._strikes = 0

    def check(self) -> Verdict:
        """The verdict on one more frame from the client, taking its token if allowed."""
        now = time.monotonic()
        self._tokens = min(
            FRAME_BURST, self._tokens + (now - self._tokens_at) * FRAME_RATE_PER_SECOND
        )
        self._tokens_at = now
        if self._tokens >= 1.0:
            if self._tokens >= FRAME_BURST - 1.0:
                self._strikes = 0  # the client slowed down: past strikes are forgiven
            self._tokens -= 1.0
            return Verdict.ALLOW
        self._strikes += 1
        return Verdict.CLOSE if self._strikes >= ABUSE_CLOSE_AFTER else Verdict.DROP
