"""Which chat server processes are alive, and which one a client should connect to.

Every server process that advertises a WebSocket URL (``CHAT_SERVER_WS_URL``; ``manage.py
serve`` sets it from its host and port unless given) publishes a :class:`ServerRecord`
every ``CHAT_SERVER_HEARTBEAT`` seconds with a time to live of ``CHAT_SERVER_TTL``
seconds (chat/registry/announcer.py). A process that dies stops refreshing and drops out
of :meth:`ServerRegistry.live` within the TTL; one that stops cleanly removes itself.

:func:`best_server` chooses among the live records: never a draining one, the client's
zone first, then the least load: open connections plus the clients sent there since the
record was published (:meth:`ServerRegistry.claim`). Without the claims, every log-in
between two heartbeats would be sent to the same process, the one that was least loaded
at the last beat. Backends (``CHAT_SERVER_REGISTRY_BACKEND``):
``memory`` (this process only, the embedded default) and ``redis`` (production), behind
the :class:`ServerRegistry` contract that tests/chat/test_registry.py checks for both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from chatproject.backends import Backend


@dataclass(frozen=True, slots=True)
class ServerRecord:
    server_id: str
    ws_url: str
    zone: str
    started_at: float  # wall-clock seconds
    connections: int
    draining: bool = False
    # Clients sent here since this record was published (not part of the published JSON).
    claimed: int = 0

    @property
    def load(self) -> int:
        return self.connections + self.claimed

    def as_json(self) -> dict[str, Any]:
        published = asdict(self)
        del published["claimed"]
        return published

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerRecord:
        return cls(
            server_id=str(data["server_id"]),
            ws_url=str(data["ws_url"]),
            zone=str(data["zone"]),
            started_at=float(data["started_at"]),
            connections=int(data["connections"]),
            draining=bool(data["draining"]),
        )


class ServerRegistry(ABC):
    @abstractmethod
    def publish(self, record: ServerRecord, *, ttl: float, now: float) -> None:
        """Add or replace the record of ``record.server_id``, alive until ``now + ttl``;
        its claims start again from zero (the new connection count includes them)."""

    @abstractmethod
    def claim(self, server_id: str) -> None:
        """Count one client sent to this server since its record was published (atomic
        across processes); an unknown id is ignored."""

    @abstractmethod
    def remove(self, server_id: str) -> None:
        """Forget a server at once (a clean stop); unknown ids are ignored."""

    @abstractmethod
    def live(self, *, now: float) -> list[ServerRecord]:
        """Every record whose time to live has not run out at ``now``, by server id, with
        its claims."""

    def suggest(self, *, zone: str, now: float) -> ServerRecord | None:
        """Choose the best live server for a client in ``zone`` and claim it."""
        chosen = best_server(self.live(now=now), zone)
        if chosen is not None:
            self.claim(chosen.server_id)
        return chosen


def best_server(records: Sequence[ServerRecord], zone: str = "") -> ServerRecord | None:
    """The record a new client should use: not draining, in ``zone`` when one there is
    live, then the least load (ties by server id, so every caller agrees)."""
    candidates = [record for record in records if not record.draining]
    in_zone = [record for record in candidates if zone and record.zone == zone]
    pool = in_zone or candidates
    if not pool:
        return None
    return min(pool, key=lambda record: (record.load, record.server_id))


_registry: Backend[ServerRegistry] = Backend("CHAT_SERVER_REGISTRY_BACKEND", base=ServerRegistry)


def get_registry() -> ServerRegistry:
    return _registry.get()
