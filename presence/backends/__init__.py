"""Where presence state lives: which devices of which users are connected, until when.

Every live connection is one *member* of its user's set, with an *expiry* (wall-clock
seconds): the time of the connection's last frame plus ``PRESENCE_TIMEOUT``. A user is
online while any member's expiry is in the future. The server process holding a
connection refreshes its expiry once per ``PRESENCE_TICK`` (never per heartbeat), so a
process that dies without cleaning up simply stops refreshing, and its members expire.

Only transitions matter to watchers, so every mutating call reports whether it changed
the user's status: :meth:`PresenceBackend.connect` returns True when the user came online,
:meth:`PresenceBackend.disconnect` when they went offline, :meth:`PresenceBackend.sweep`
the users whose last members expired. Each transition is reported to exactly one caller.

Backends: ``memory`` (in-process, the embedded default) and ``redis`` (production).
Calls are synchronous and thread-safe: the consumer calls them from a worker thread, next
to the database work of the same transition.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chatproject.backends import Backend


@dataclass(frozen=True, slots=True)
class Lease:
    """One connection's claim that its user is online until ``expiry``."""

    user_id: int
    member: str
    expiry: float


class PresenceBackend(ABC):
    @abstractmethod
    def connect_many(self, leases: Sequence[Lease], *, now: float) -> list[bool]:
        """Add connections, in order; for each, True if its user was offline before (an
        online transition). Two leases of one user: only the first can be True. One round
        trip for the batch (a reconnect storm connects hundreds of sockets at once)."""

    @abstractmethod
    def disconnect_many(self, members: Sequence[tuple[int, str]], *, now: float) -> list[bool]:
        """Remove connections ``(user id, member)``, in order; for each, True if it was its
        user's last live one (an offline transition). False if the member was already
        gone (the sweeper took it and reported it). One round trip for the batch."""

    def connect(self, lease: Lease, *, now: float) -> bool:
        """One connection: :meth:`connect_many` of one."""
        return self.connect_many([lease], now=now)[0]

    def disconnect(self, user_id: int, member: str, *, now: float) -> bool:
        """One connection: :meth:`disconnect_many` of one."""
        return self.disconnect_many([(user_id, member)], now=now)[0]

    @abstractmethod
    def refresh(self, leases: Sequence[Lease]) -> list[Lease]:
        """Extend existing members; return the leases whose member no longer exists (swept
        while this process stalled, or state lost): the caller reconnects those."""

    @abstractmethod
    def sweep(self, *, now: float, limit: int, lock_seconds: float) -> list[tuple[int, float]]:
        """Drop expired members; return (user id, last expiry) of users left with none.

        At most one process sweeps per ``lock_seconds`` (the others get an empty list).
        """

    @abstractmethod
    def online(self, user_ids: Iterable[int], *, now: float) -> set[int]:
        """Which of ``user_ids`` have at least one unexpired member."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything (tests)."""


_backend: Backend[PresenceBackend] = Backend("PRESENCE_BACKEND", base=PresenceBackend)


def get_backend() -> PresenceBackend:
    """The configured backend (``PRESENCE_BACKEND``), created once per process."""
    return _backend.get()
