"""The workloads by name (``python -m bench run <name>``)."""

from __future__ import annotations

from collections.abc import Callable

from .connections import idle, storm
from .history import history_pages
from .options import Options
from .presence import heartbeats
from .sweeps import group, one_to_one
from .targets import Target
from .workload import Result

__all__ = ["WORKLOADS", "Result"]

WORKLOADS: dict[str, Callable[[Target, Options], Result]] = {
    "oneone": one_to_one,
    "group": group,
    "idle": idle,
    "storm": storm,
    "history": history_pages,
    "heartbeats": heartbeats,
}
