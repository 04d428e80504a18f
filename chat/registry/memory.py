"""The embedded registry: records kept in this process (only this process serves)."""

from __future__ import annotations

import threading
from dataclasses import replace

from . import ServerRecord, ServerRegistry


class MemoryRegistry(ServerRegistry):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, tuple[ServerRecord, float]] = {}

    def publish(self, record: ServerRecord, *, ttl: float, now: float) -> None:
        with self._lock:
            self._records[record.server_id] = (replace(record, claimed=0), now + ttl)

    def claim(self, server_id: str) -> None:
        with self._lock:
            if server_id in self._records:
                record, expiry = self._records[server_id]
                self._records[server_id] = (replace(record, claimed=record.claimed + 1), expiry)

    def remove(self, server_id: str) -> None:
        with self._lock:
            self._records.pop(server_id, None)

    def live(self, *, now: float) -> list[ServerRecord]:
        with self._lock:
            for server_id in [s for s, (_, expiry) in self._records.items() if expiry <= now]:
                del self._records[server_id]
            return [record for _, (record, _) in sorted(self._records.items())]
