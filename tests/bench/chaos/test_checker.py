"""The checker's verdicts, each proven on a synthetic ledger: a clean run passes, and every
kind of failure (lost, duplicated, reordered, gap, history missing or doubled, a push
twice, presence wrong) is reported, in the fault window it belongs to."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.chaos import report
from bench.chaos.checker import (
    HISTORY,
    FaultWindow,
    Finding,
    Gap,
    StoredMessage,
    check,
    check_presence,
)
from bench.chaos.ledger import ChaosLedger, ClientError, SendAttempt, SentAck, StreamEvent

CONVERSATION = 10
SENDER, OTHER = 1, 2  # the sender has devices a1 and a2, the other member b1


class Run:
    """A run in which a1 sends messages that reach a2 and b1 (unless told otherwise)."""

    def __init__(self) -> None:
        self.ledger = ChaosLedger(started_at=0.0)
        self.ledger.members = {CONVERSATION: (SENDER, OTHER)}
        self.seq: Counter[str] = Counter()
        self.stored: list[StoredMessage] = []
        for device, user in (("a1", SENDER), ("a2", SENDER), ("b1", OTHER)):
            self.ledger.add_device(device, user)
            self.ledger.record_live(device, True, at=0.5)

    def deliver(self, device: str, message_id: int, kind: str = "message.new") -> None:
        self.seq[device] += 1
        self.ledger.record_event(
            StreamEvent(
                device=device,
                seq=self.seq[device],
                type=kind,
                at=1.0,
                message_id=message_id,
                conversation_id=CONVERSATION,
                sender_id=SENDER,
                client_msg_id=f"c{message_id}",
            )
        )

    def attempt(self, message_id: int, at: float) -> None:
        self.ledger.record_attempt(
            SendAttempt("a1", SENDER, CONVERSATION, f"c{message_id}", at, False)
        )
        self.stored.append(StoredMessage(message_id, CONVERSATION, SENDER, f"c{message_id}"))

    def message(self, message_id: int, at: float, to: tuple[str, ...] = ("a2", "b1")) -> None:
        self.attempt(message_id, at)
        self.ledger.record_ack(
            SentAck("a1", SENDER, CONVERSATION, f"c{message_id}", message_id, None, False, at)
        )
        self.deliver("a1", message_id, "sent")
        for device in to:
            self.deliver(device, message_id)


def clean_run() -> Run:
    run = Run()
    for number, message_id in enumerate((100, 101, 102)):
        run.message(message_id, at=1.0 + number)
    return run


def test_a_clean_run_passes_with_every_message_counted() -> None:
    run = clean_run()
    result = check(run.ledger, history=run.stored, pushes={"fcm:x": [100, "101"]})
    assert result.ok
    assert result.totals() == {
        "acknowledged": 3,
        "lost": 0,
        "duplicated": 0,
        "reordered": 0,
        "gaps": 0,
        "unacknowledged_stored": 0,
        "pushes_received": 2,
        "push_duplicates": 0,
        "push_missing": 0,
    }
    assert [(w.name, w.acknowledged, w.live_again_seconds) for w in result.windows] == [
        ("whole run", 3, 0.0)
    ]


def test_a_message_missing_on_one_device_is_lost() -> None:
    run = clean_run()
    run.message(103, at=4.0, to=("a2",))  # b1 never gets it
    result = check(run.ledger)
    assert not result.ok
    assert result.lost == [Finding(103, "b1")]
    assert result.totals()["lost"] == 1


def test_a_message_received_twice_or_stored_twice_is_duplicated() -> None:
    run = clean_run()
    run.deliver("b1", 101)  # a second queue entry for the same message
    result = check(run.ledger)
    assert result.duplicated == [Finding(101, "b1")]
    assert not result.ok

    run = clean_run()
    run.stored.append(run.stored[0])  # a history row twice
    # and one client_msg_id acknowledged as two messages
    run.ledger.record_ack(SentAck("a1", SENDER, CONVERSATION, "c102", 199, None, False, 3.5))
    result = check(run.ledger, history=run.stored)
    assert Finding(100, HISTORY) in result.duplicated
    assert Finding(199, HISTORY) in result.duplicated
    assert not result.ok


def test_messages_out_of_id_order_are_reordered() -> None:
    run = Run()
    run.message(100, at=1.0)
    run.message(102, at=2.0, to=("a2",))
    run.message(101, at=3.0, to=("a2",))
    run.deliver("b1", 102)
    run.deliver("b1", 101)
    result = check(run.ledger)
    # a2 and b1 saw 101 after 102 (a1 too: it sent them in that order)
    assert set(result.reordered) == {Finding(101, "a1"), Finding(101, "a2"), Finding(101, "b1")}
    assert result.totals()["reordered"] == 1
    assert not result.ok


def test_a_seq_skipped_in_a_stream_is_a_gap() -> None:
    run = clean_run()
    run.seq["b1"] += 1  # b1's next event skips a position
    run.message(103, at=4.0)
    result = check(run.ledger)
    assert result.gaps == [Gap("b1", 3, 5)]
    assert not result.ok

    run = clean_run()
    run.ledger.record_gap("a2", 2, 4)  # a live gap the client re-synced for
    assert check(run.ledger).gaps == [Gap("a2", 2, 4)]


def test_history_must_hold_every_acknowledged_message() -> None:
    run = clean_run()
    history = [row for row in run.stored if row.id != 101]
    result = check(run.ledger, history=history)
    assert result.lost == [Finding(101, HISTORY)]
    assert not result.ok


def test_a_stored_message_never_acknowledged_is_reported_not_failed() -> None:
    run = clean_run()
    run.attempt(103, at=4.0)  # no `sent` came back, but the server stored it ...
    for device in ("a1", "a2", "b1"):
        run.deliver(device, 103)  # ... and delivered it (a1: its own message.new on sync)
    result = check(run.ledger, history=run.stored)
    assert result.unacknowledged_stored == [103]
    assert result.ok
    # Stored without acknowledgement still has to reach everyone.
    run = clean_run()
    run.attempt(103, at=4.0)
    run.deliver("a1", 103)
    result = check(run.ledger, history=run.stored)
    assert result.unacknowledged_stored == [103]
    assert set(result.lost) == {Finding(103, "a2"), Finding(103, "b1")}


def test_a_push_owed_and_never_received_is_reported_without_failing_the_run() -> None:
    run = clean_run()
    # OTHER's phone (no socket) is owed every message a1 sent; a phone of the sender is
    # owed none of its own messages.
    run.ledger.push_owners = {"phone": OTHER, "senders-phone": SENDER}
    windows = [FaultWindow("kill_worker", 1.5, 2.5)]
    result = check(run.ledger, windows=windows, pushes={"phone": [100, 102]})
    assert result.push_missing == {"phone": [101]}
    assert result.totals()["push_missing"] == 1
    assert [(w.name, w.push_missing) for w in result.windows] == [
        ("before faults", 0),
        ("kill_worker", 1),
    ]
    assert result.ok
    assert "phone: [101]" in report.markdown(result, plot=None)


def test_a_push_reaching_one_address_twice_is_reported() -> None:
    run = clean_run()
    result = check(run.ledger, pushes={"fcm:a": [100, 101], "webpush:b": ["100", 102, 100]})
    assert result.push_duplicates == {"webpush:b": [100]}
    assert not result.ok


async def test_presence_must_settle_to_the_truth_within_the_timeout() -> None:
    reads = 0

    async def slow_to_settle() -> dict[int, str | None]:
        nonlocal reads
        reads += 1
        return {SENDER: "online", OTHER: "online" if reads >= 3 else "offline"}

    truth = {SENDER: "online", OTHER: "online"}
    verdict = await check_presence(slow_to_settle, truth, within=5, poll_seconds=0.01)
    assert verdict.settled
    assert reads == 3

    async def wrong() -> dict[int, str | None]:
        return {SENDER: "online", OTHER: None}

    verdict = await check_presence(wrong, truth, within=0.05, poll_seconds=0.01)
    assert not verdict.settled
    assert verdict.wrong == {OTHER: ("online", None)}
    assert not check(clean_run().ledger, presence=verdict).ok


def test_figures_are_given_per_fault_window(tmp_path: Path) -> None:
    run = Run()
    run.message(100, at=1.0)
    run.ledger.record_live("b1", False, at=1.6)
    run.ledger.errors.append(ClientError("b1", 1.6, "closed:1006", False))
    run.message(101, at=2.0, to=("a2",))  # lost while b1 was away
    run.ledger.record_live("b1", True, at=3.0)
    run.message(102, at=4.0)
    # a2 notices the burst only after it ended, and is back 0.6 s after its end
    run.ledger.record_live("a2", False, at=3.7)
    run.ledger.record_live("a2", True, at=4.2)
    windows = [FaultWindow("kill server 1", 1.5, 2.5), FaultWindow("reconnect burst", 3.5, 3.6)]
    # The workload closing every device at the end is no disconnection to recover from.
    run.ledger.stopped_at = 9.0
    for device in run.ledger.devices:
        run.ledger.record_live(device, False, at=9.1)
    result = check(run.ledger, windows=windows)
    by_name = {window.name: window for window in result.windows}
    assert list(by_name) == ["before faults", "kill server 1", "reconnect burst"]
    assert (by_name["before faults"].acknowledged, by_name["before faults"].lost) == (1, 0)
    kill = by_name["kill server 1"]
    assert (kill.acknowledged, kill.lost) == (1, 1)
    assert kill.live_again_seconds == 0.5  # b1 live again at 3.0, the fault ended at 2.5
    assert kill.errors == Counter({"closed:1006": 1})
    assert by_name["reconnect burst"].live_again_seconds == pytest.approx(0.6)
    assert kill.offline_seconds == [pytest.approx(1.4)]  # b1: down at 1.6, live at 3.0
    assert by_name["reconnect burst"].offline_seconds == [pytest.approx(0.5)]

    text = report.write(
        tmp_path, run.ledger, result, timeline=[(1.5, "kill server 1")], windows=windows
    )
    assert text.startswith("# Fault injection: FAIL")
    assert "| kill server 1 | 1 | 1 | 0 | 0 | 0 | 0 | 0.5 | 1.4 / 1.4 | closed:1006 x1 |" in text
    assert "101 @ b1" in text
    assert (tmp_path / "timeline.png").stat().st_size > 0


def test_a_device_that_never_comes_back_is_reported_as_never_live_again() -> None:
    run = clean_run()
    run.ledger.record_live("b1", False, at=5.5)
    result = check(run.ledger, windows=[FaultWindow("pause server", 5.0, 6.0)])
    assert result.windows[1].live_again_seconds is None
    assert "| pause server | 0 | 0 | 0 | 0 | 0 | 0 | never |" in report.markdown(result)
