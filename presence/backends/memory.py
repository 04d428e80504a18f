"""In-process presence state for the embedded default (one server process, no Redis)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

from . import Lease, PresenceBackend


class MemoryPresence(PresenceBackend):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: dict[int, dict[str, float]] = {}  # user id -> member -> expiry
        self._swept_at = -1e9

    def _drop_expired(self, user_id: int, now: float) -> dict[str, float]:
        members = self._members.get(user_id, {})
        for member in [m for m, expiry in members.items() if expiry <= now]:
            del members[member]
        return members

    def connect_many(self, leases: Sequence[Lease], *, now: float) -> list[bool]:
        came_online: list[bool] = []
        with self._lock:
            for lease in leases:
                members = self._drop_expired(lease.user_id, now)
                came_online.append(not members)
                members[lease.member] = lease.expiry
                self._members[lease.user_id] = members
        return came_online

    def disconnect_many(self, members: Sequence[tuple[int, str]], *, now: float) -> list[bool]:
        went_offline: list[bool] = []
        with self._lock:
            for user_id, member in members:
                live = self._members.get(user_id)
                removed = live is not None and live.pop(member, None) is not None
                # The last live one: expired members left behind do not count.
                last = removed and not self._drop_expired(user_id, now)
                if last:
                    del self._members[user_id]
                went_offline.append(last)
        return went_offline

    def refresh(self, leases: Sequence[Lease]) -> list[Lease]:
        missing: list[Lease] = []
        with self._lock:
            for lease in leases:
                members = self._members.get(lease.user_id)
                if members is None or lease.member not in members:
                    missing.append(lease)
                else:
                    members[lease.member] = lease.expiry
        return missing

    def sweep(self, *, now: float, limit: int, lock_seconds: float) -> list[tuple[int, float]]:
        gone: list[tuple[int, float]] = []
        with self._lock:
            # Several event loops (tests) share this state: one sweep per interval is enough.
            started = time.monotonic()
            if started - self._swept_at < lock_seconds:
                return gone
            self._swept_at = started
            for user_id, members in list(self._members.items()):
                if len(gone) >= limit:
                    break
                if members and min(members.values()) > now:
                    continue
                last = max(members.values(), default=now)
                if not self._drop_expired(user_id, now):
                    del self._members[user_id]
                    gone.append((user_id, last))
        return gone

    def online(self, user_ids: Iterable[int], *, now: float) -> set[int]:
        with self._lock:
            return {
                user_id
                for user_id in user_ids
                if any(expiry > now for expiry in self._members.get(user_id, {}).values())
            }

    def reset(self) -> None:
        with self._lock:
            self._members.clear()
            self._swept_at = -1e9
