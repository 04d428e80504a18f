"""The verdict of a fault-injection run, from its ledger, after the system settled.

``check(ledger, windows=..., history=..., pushes=..., presence=...)`` returns a
``CheckResult``:

* every message acknowledged to its sender (``sent``), and every message found stored
  without an acknowledgement (allowed, reported as unacknowledged-but-stored), reached
  every device of every member exactly once (by message id) and, per device and
  conversation, in id order;
* every device's processed stream is gap-free from its stored cursor (and no client saw
  a live gap it had to re-sync for);
* ``history`` (``StoredMessage`` rows, read over REST or from the database) holds each of
  those messages exactly once, and no ``client_msg_id`` of one user was stored twice;
* ``pushes`` (push address -> message ids it received) has no message twice per address;
  the acknowledged messages a push address's owner (``ledger.push_owners``: users whose
  devices are not connected) should have been pushed and was not are reported as
  ``push_missing`` (not a failure: a push is a best-effort hint, the stream is the truth);
* ``presence`` is the verdict of ``check_presence`` (polls a reader until it matches
  the truth, within the documented 70 s).

Figures are given per fault window: a message belongs to the window in which it was
first attempted, a window lasts from its fault's start to the next fault's start (its
consequences included), and "live again" runs from the fault's end until every device
was live again after the last disconnection in that window. Times are
``time.monotonic()`` seconds, as in the ledger.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .ledger import ChaosLedger, LiveChange, StreamEvent

# PRESENCE_TIMEOUT (60 s) plus one PRESENCE_TICK (10 s): docs/protocol.md, "Heartbeats".
PRESENCE_SETTLE_SECONDS = 70.0
MESSAGE_EVENTS = frozenset({"message.new", "sent"})
HISTORY = "history"  # the "device" named in a loss or duplicate found in stored history


@dataclass(frozen=True)
class FaultWindow:
    name: str
    start: float
    end: float


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: int
    sender_id: int
    client_msg_id: str


@dataclass(frozen=True)
class PresenceVerdict:
    settled: bool
    seconds: float  # until it matched, or how long it was polled
    # user id -> (expected status, last status read) for the users still wrong
    wrong: dict[int, tuple[str, str | None]]


@dataclass(frozen=True)
class Finding:
    message_id: int
    where: str  # a device key, or HISTORY


@dataclass(frozen=True)
class Gap:
    device: str
    cursor: int
    seq: int


@dataclass
class WindowFigures:
    name: str
    start: float
    end: float
    acknowledged: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    unacknowledged_stored: int = 0
    push_missing: int = 0  # (address, message) pairs owed a push that never came
    live_again_seconds: float | None = 0.0  # None: not every device was live again
    # How long each disconnection that began in the window lasted until that device was
    # live again (seconds, in order of the disconnections; one that never ended is left out).
    offline_seconds: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class CheckResult:
    windows: list[WindowFigures]
    lost: list[Finding]
    duplicated: list[Finding]
    reordered: list[Finding]
    gaps: list[Gap]
    unacknowledged_stored: list[int]
    push_duplicates: dict[str, list[int]]
    presence: PresenceVerdict | None
    push_missing: dict[str, list[int]] = field(default_factory=dict)
    pushes_received: int = 0

    @property
    def ok(self) -> bool:
        presence_ok = self.presence is None or self.presence.settled
        return presence_ok and not (
            self.lost or self.duplicated or self.reordered or self.gaps or self.push_duplicates
        )

    def totals(self) -> dict[str, int]:
        return {
            "acknowledged": sum(window.acknowledged for window in self.windows),
            "lost": len({finding.message_id for finding in self.lost}),
            "duplicated": len({finding.message_id for finding in self.duplicated}),
            "reordered": len({finding.message_id for finding in self.reordered}),
            "gaps": len(self.gaps),
            "unacknowledged_stored": len(self.unacknowledged_stored),
            "pushes_received": self.pushes_received,
            "push_duplicates": sum(len(ids) for ids in self.push_duplicates.values()),
            "push_missing": sum(len(ids) for ids in self.push_missing.values()),
        }


def check(
    ledger: ChaosLedger,
    *,
    windows: Sequence[FaultWindow] = (),
    history: Sequence[StoredMessage] | None = None,
    pushes: Mapping[str, Sequence[int | str]] | None = None,
    presence: PresenceVerdict | None = None,
) -> CheckResult:
    acked = ledger.acknowledged()
    conversation_of = {message_id: ack.conversation_id for message_id, ack in acked.items()}
    unacked_stored = _unacknowledged_stored(ledger, history, conversation_of)
    duplicated = _stored_twice(ledger, history)
    lost: list[Finding] = []
    reordered: list[Finding] = []
    by_device = _events_by_device(ledger)
    for device, events in by_device.items():
        duplicated += _delivered_twice(device, events)
        reordered += _out_of_order(device, events)
    lost += _undelivered(ledger, conversation_of, by_device)
    if history is not None:
        in_history = {row.id for row in history}
        lost += [Finding(m, HISTORY) for m in conversation_of if m not in in_history]
    result = CheckResult(
        windows=[],
        lost=lost,
        duplicated=duplicated,
        reordered=reordered,
        gaps=_gaps(ledger, by_device),
        unacknowledged_stored=sorted(unacked_stored),
        push_duplicates=push_duplicates(pushes or {}),
        presence=presence,
        push_missing=push_missing(ledger, pushes) if pushes is not None else {},
        pushes_received=sum(len(ids) for ids in (pushes or {}).values()),
    )
    result.windows = _figures(ledger, windows, result, set(acked))
    return result


def _events_by_device(ledger: ChaosLedger) -> dict[str, list[StreamEvent]]:
    by_device: dict[str, list[StreamEvent]] = {device: [] for device in ledger.devices}
    for event in ledger.events:
        by_device.setdefault(event.device, []).append(event)
    return by_device


def _unacknowledged_stored(
    ledger: ChaosLedger,
    history: Sequence[StoredMessage] | None,
    conversation_of: dict[int, int],
) -> set[int]:
    """Messages attempted, never acknowledged, yet stored; added to ``conversation_of``."""
    attempted = {(a.user_id, a.client_msg_id) for a in ledger.attempts}
    acked_keys = {(ack.user_id, ack.client_msg_id) for ack in ledger.acks}
    stored: dict[int, tuple[int, int, str]] = {}
    for row in history or ():
        stored[row.id] = (row.conversation_id, row.sender_id, row.client_msg_id)
    for event in ledger.events:
        if event.message_id is not None and event.type == "message.new":
            seen = (event.conversation_id or 0, event.sender_id or 0, event.client_msg_id or "")
            stored.setdefault(event.message_id, seen)
    found: set[int] = set()
    for message_id, (conversation_id, sender_id, client_msg_id) in stored.items():
        key = (sender_id, client_msg_id)
        if key in attempted and key not in acked_keys and message_id not in conversation_of:
            found.add(message_id)
            conversation_of[message_id] = conversation_id
    return found


def _stored_twice(ledger: ChaosLedger, history: Sequence[StoredMessage] | None) -> list[Finding]:
    """One ``client_msg_id`` acknowledged or stored as two messages, or a history row twice."""
    ids_of: defaultdict[tuple[int, str], set[int]] = defaultdict(set)
    for ack in ledger.acks:
        ids_of[ack.user_id, ack.client_msg_id].add(ack.message_id)
    rows = Counter(row.id for row in history or ())
    for row in history or ():
        ids_of[row.sender_id, row.client_msg_id].add(row.id)
    findings = [Finding(message_id, HISTORY) for message_id, count in rows.items() if count > 1]
    for ids in ids_of.values():
        findings += [Finding(message_id, HISTORY) for message_id in sorted(ids)[1:]]
    return findings


def _delivered_twice(device: str, events: Sequence[StreamEvent]) -> list[Finding]:
    counts = Counter(e.message_id for e in events if e.type in MESSAGE_EVENTS)
    return [Finding(m, device) for m, count in counts.items() if m is not None and count > 1]


def _out_of_order(device: str, events: Sequence[StreamEvent]) -> list[Finding]:
    newest: dict[int, int] = {}
    findings: list[Finding] = []
    for event in events:
        if event.type not in MESSAGE_EVENTS or event.message_id is None:
            continue
        conversation_id = event.conversation_id or 0
        if event.message_id < newest.get(conversation_id, 0):
            findings.append(Finding(event.message_id, device))
        newest[conversation_id] = max(newest.get(conversation_id, 0), event.message_id)
    return findings


def _undelivered(
    ledger: ChaosLedger,
    conversation_of: Mapping[int, int],
    by_device: Mapping[str, Sequence[StreamEvent]],
) -> list[Finding]:
    received = {
        device: {e.message_id for e in events if e.type in MESSAGE_EVENTS}
        for device, events in by_device.items()
    }
    devices_of: defaultdict[int, list[str]] = defaultdict(list)
    for device, user_id in ledger.devices.items():
        devices_of[user_id].append(device)
    findings: list[Finding] = []
    for message_id, conversation_id in sorted(conversation_of.items()):
        for user_id in ledger.members.get(conversation_id, ()):
            findings += [
                Finding(message_id, device)
                for device in devices_of[user_id]
                if message_id not in received.get(device, set())
            ]
    return findings


def _gaps(ledger: ChaosLedger, by_device: Mapping[str, Sequence[StreamEvent]]) -> list[Gap]:
    gaps = [Gap(gap.device, gap.cursor, gap.seq) for gap in ledger.gaps]
    for device, events in by_device.items():
        cursor = ledger.start_cursors.get(device, 0)
        for event in events:
            if event.seq != cursor + 1:
                gaps.append(Gap(device, cursor, event.seq))
            cursor = max(cursor, event.seq)
    return gaps


def push_duplicates(received: Mapping[str, Sequence[int | str]]) -> dict[str, list[int]]:
    """Push address -> message ids it received more than once."""
    found: dict[str, list[int]] = {}
    for address, message_ids in received.items():
        counts = Counter(int(message_id) for message_id in message_ids)
        twice = sorted(message_id for message_id, count in counts.items() if count > 1)
        if twice:
            found[address] = twice
    return found


def push_missing(
    ledger: ChaosLedger, received: Mapping[str, Sequence[int | str]]
) -> dict[str, list[int]]:
    """Push address -> acknowledged messages it was owed and did not receive: those of its
    owner's conversations sent by someone else (the owner has no connected device, so
    every one of them is pushed)."""
    missing: dict[str, list[int]] = {}
    acked = ledger.acknowledged()
    for address, owner in ledger.push_owners.items():
        got = {int(message_id) for message_id in received.get(address, ())}
        owed = sorted(
            message_id
            for message_id, ack in acked.items()
            if owner in ledger.members.get(ack.conversation_id, ()) and ack.user_id != owner
        )
        if absent := [message_id for message_id in owed if message_id not in got]:
            missing[address] = absent
    return missing


def _figures(
    ledger: ChaosLedger,
    windows: Sequence[FaultWindow],
    result: CheckResult,
    acked: set[int],
) -> list[WindowFigures]:
    ordered = sorted(windows, key=lambda window: window.start)
    first = "before faults" if ordered else "whole run"
    spans = [FaultWindow(first, float("-inf"), float("-inf")), *ordered]
    starts = [span.start for span in spans]
    window_of = {
        message_id: bisect_right(starts, at) - 1
        for message_id, at in _first_attempts(ledger).items()
    }
    figures: list[WindowFigures] = []
    for index, window in enumerate(spans):
        until = starts[index + 1] if index + 1 < len(spans) else ledger.stopped_at

        def count(message_ids: Iterable[int], index: int = index) -> int:
            return len({m for m in message_ids if window_of.get(m, 0) == index})

        figures.append(
            WindowFigures(
                name=window.name,
                start=window.start,
                end=window.end,
                acknowledged=count(acked),
                lost=count(f.message_id for f in result.lost),
                duplicated=count(f.message_id for f in result.duplicated),
                reordered=count(f.message_id for f in result.reordered),
                unacknowledged_stored=count(result.unacknowledged_stored),
                push_missing=sum(count(ids) for ids in result.push_missing.values()),
                live_again_seconds=(
                    _live_again(ledger.timeline, len(ledger.devices), window, until)
                    if index
                    else 0.0
                ),
                offline_seconds=(
                    _offline_spans(ledger.timeline, window.start, until) if index else []
                ),
                errors=ledger.error_counts(window.start, until),
            )
        )
    return figures


def _offline_spans(timeline: Sequence[LiveChange], start: float, until: float) -> list[float]:
    """For each device that lost its live socket in [start, until): how long until it was
    live again (whenever that was)."""
    down_since: dict[str, float] = {}
    spans: list[float] = []
    for change in sorted(timeline, key=lambda change: change.at):
        if not change.live:
            if start <= change.at < until:
                down_since.setdefault(change.device, change.at)
        elif change.device in down_since:
            spans.append(change.at - down_since.pop(change.device))
    return spans


def _first_attempts(ledger: ChaosLedger) -> dict[int, float]:
    """message id -> when its client_msg_id was first attempted."""
    first_at: dict[tuple[int, str], float] = {}
    for attempt in ledger.attempts:
        first_at.setdefault((attempt.user_id, attempt.client_msg_id), attempt.at)
    by_message: dict[int, float] = {}
    for ack in ledger.acks:
        by_message.setdefault(
            ack.message_id, first_at.get((ack.user_id, ack.client_msg_id), ack.at)
        )
    for event in ledger.events:
        if event.message_id is not None and event.sender_id is not None:
            key = (event.sender_id, event.client_msg_id or "")
            if key in first_at:
                by_message.setdefault(event.message_id, first_at[key])
    return by_message


def _live_again(
    timeline: Sequence[LiveChange], devices: int, window: FaultWindow, until: float
) -> float | None:
    """Seconds from the fault's end until every device was live again after the last
    disconnection it caused (one in [start, until), also those noticed after the end);
    0 if none; None if not every device came back."""
    live: set[str] = set()
    went_down = False
    recovered_at: float | None = None
    for change in sorted(timeline, key=lambda change: change.at):
        if change.at >= until:
            break
        if change.live:
            live.add(change.device)
        else:
            live.discard(change.device)
            if window.start <= change.at < until:
                went_down = True
        if went_down and len(live) == devices:
            recovered_at = change.at
            went_down = False
    if went_down:
        return None
    return 0.0 if recovered_at is None else max(0.0, recovered_at - window.end)


async def check_presence(
    read: Callable[[], Awaitable[Mapping[int, str | None]]],
    truth: Mapping[int, str],
    within: float = PRESENCE_SETTLE_SECONDS,
    poll_seconds: float = 0.5,
) -> PresenceVerdict:
    """Poll ``read`` until every user's status is ``truth``'s, for at most ``within`` s."""
    started = time.monotonic()
    while True:
        seen = await read()
        wrong = {
            user: (status, seen.get(user))
            for user, status in truth.items()
            if seen.get(user) != status
        }
        elapsed = time.monotonic() - started
        if not wrong or elapsed >= within:
            return PresenceVerdict(settled=not wrong, seconds=elapsed, wrong=wrong)
        await asyncio.sleep(poll_seconds)
