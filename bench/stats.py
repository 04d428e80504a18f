"""Percentiles and the pass/fail rules applied to every rate step."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 95, 99)


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in ms (NaN when there are no samples)."""
    if len(samples) == 0:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    values = np.asarray(samples, dtype=np.float64)
    p50, p95, p99 = np.percentile(values, PERCENTILES)
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(values.max())}


def sustained(row: dict[str, float], *, p99_limit_ms: float) -> bool:
    """A step is sustained when nothing was lost or refused, (almost) everything owed
    arrived, and p99 stayed within the limit."""
    return bool(
        row["lost"] == 0
        and row["duplicates"] == 0
        and row["errors"] == 0
        and row["delivered"] >= 0.99 * row["owed"]
        and row["p99"] <= p99_limit_ms
    )


def overloaded(row: dict[str, float], *, p99_limit_ms: float) -> bool:
    """Far past the knee: further (higher) steps would only take time."""
    return bool(
        row["p99"] > 10 * p99_limit_ms
        or row["delivered"] < 0.5 * row["owed"]
        or row["errors"] > 0.01 * max(row["sent"], 1)
    )
