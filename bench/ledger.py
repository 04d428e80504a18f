"""Loss and duplicate accounting for every workload.

Each load generator process keeps a ``DeviceStream`` per device (the ``seq`` cursor and
the message ids it has seen) and one ``Ledger``: the messages its senders had
acknowledged (``sent``), with how many devices must receive each, and how many devices
did receive each. The coordinator merges the ledgers of all processes: a message that
was acknowledged but reached fewer devices than it should is a loss; a second copy of a
message, or an event whose ``seq`` is not above the cursor, is a duplicate; a ``seq``
that skips ahead is a gap (the server promises gap-free streams).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class DeviceStream:
    cursor: int = 0
    seen: set[int] = field(default_factory=set)

    def accept(self, seq: int | None, message_id: int | None, ledger: Ledger) -> bool:
        """Record one event; returns False when it is a duplicate (to be ignored)."""
        if seq is not None:
            if seq <= self.cursor:
                ledger.duplicates += 1
                return False
            if seq > self.cursor + 1:
                ledger.gaps += 1
            self.cursor = seq
        if message_id is not None:
            if message_id in self.seen:
                ledger.duplicates += 1
                return False
            self.seen.add(message_id)
            ledger.received[message_id] += 1
        return True


@dataclass
class Ledger:
    # message id -> (step index, devices that must receive it)
    acked: dict[int, tuple[int, int]] = field(default_factory=dict)
    # message id -> devices that received it (once each; repeats count as duplicates)
    received: Counter[int] = field(default_factory=Counter)
    duplicates: int = 0
    gaps: int = 0

    def merge(self, other: Ledger) -> None:
        self.acked.update(other.acked)
        self.received.update(other.received)
        self.duplicates += other.duplicates
        self.gaps += other.gaps

    def lost(self, step: int | None = None) -> int:
        """Deliveries owed for acknowledged messages that never arrived."""
        return sum(
            max(0, expected - self.received.get(message_id, 0))
            for message_id, (message_step, expected) in self.acked.items()
            if step is None or message_step == step
        )

    def unexpected(self) -> int:
        """Messages received that no sender saw acknowledged (should be 0 after draining)."""
        return sum(1 for message_id in self.received if message_id not in self.acked)
