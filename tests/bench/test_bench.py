"""The benchmark runs at a tiny size, and its loss/duplicate counter catches faults.

Runs against the chat server on the configuration the suite runs on: embedded by
default, PostgreSQL + Redis with two server processes when CHAT_TEST_CONFIG=production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import report
from bench.__main__ import build_options, parse_args, plan_targets
from bench.connections import idle, storm
from bench.ledger import DeviceStream, Ledger
from bench.loadgen_worker import Faults
from bench.options import options_for
from bench.sweeps import one_to_one
from bench.targets import (
    Target,
    free_ports,
    start_channels_tutorial,
    start_chat,
    start_relay,
)
from bench.workload import Result

pytestmark = pytest.mark.e2e

PRODUCTION = os.environ.get("CHAT_TEST_CONFIG") == "production"
# The machine's Redis, on a database no other test uses (the tutorial's pub/sub layer
# stores no keys; pub/sub channels are told apart by the layer's prefix).
TUTORIAL_REDIS_URL = "redis://127.0.0.1:6379/12"


def test_ledger_counts_losses_duplicates_and_gaps() -> None:
    ledger = Ledger()
    ledger.acked = {101: (0, 2), 102: (0, 2), 103: (1, 2)}
    alice, bob = DeviceStream(), DeviceStream()
    assert alice.accept(1, 101, ledger)
    assert alice.accept(2, 102, ledger)
    assert not alice.accept(2, 102, ledger)  # replayed seq
    assert not alice.accept(None, 101, ledger)  # same message again without a seq
    assert alice.accept(4, 103, ledger)  # seq 3 skipped
    assert bob.accept(1, 101, ledger)
    assert (ledger.duplicates, ledger.gaps) == (2, 1)
    assert ledger.lost() == 2  # bob never got 102 and 103
    assert (ledger.lost(0), ledger.lost(1)) == (1, 1)


@pytest.fixture(scope="module")
def chat_server() -> Iterator[Target]:
    # One server for the module: starting one (and migrating) is most of a test's time.
    # Each workload signs up its own users, so the tests do not see each other's data.
    target = start_chat(
        config="production" if PRODUCTION else "embedded",
        processes=2 if PRODUCTION else 1,
        server="uvicorn",
        first_port=0,
        run_id=f"t{os.getpid()}",
    )
    yield target
    target.stop()


def test_one_to_one_sweep_is_clean_and_reported(chat_server: Target, tmp_path: Path) -> None:
    options = options_for("tiny", first_port=0, rates=[20])
    result = one_to_one(chat_server, options)
    assert result.summary["acknowledged"] > 0
    assert result.summary["lost"] == 0
    assert result.summary["duplicates"] == 0
    assert result.summary["gaps"] == 0
    # Latency depends on how busy the machine is; only the accounting is asserted.
    assert result.rows[0]["offered"] == 20
    assert result.rows[0]["delivered"] == result.rows[0]["owed"] > 0
    folder = report.write(
        [result], workload="1:1", command="test", options={}, root=tmp_path / "results"
    )
    text = (folder / "report.md").read_text()
    assert "max sustained msgs/s" in text
    assert (folder / "1to1-latency.png").stat().st_size > 0


def test_injected_loss_and_duplicate_are_detected(chat_server: Target) -> None:
    # The 3rd message received is dropped and the 5th processed twice, client side.
    options = options_for(
        "tiny", first_port=0, rates=[20], faults=Faults(drop_nth=3, duplicate_nth=5)
    )
    result: Result = one_to_one(chat_server, options)
    assert result.summary["lost"] == 1
    assert result.summary["duplicates"] == 1
    assert result.summary["gaps"] == 1  # the dropped event leaves a hole in that stream


def test_reconnect_storm_syncs_everything_missed(chat_server: Target) -> None:
    result = storm(chat_server, options_for("tiny", first_port=0))
    assert result.summary["live"] == result.summary["devices"]
    assert result.summary["acknowledged"] > 0
    assert result.summary["lost"] == 0
    assert result.summary["duplicates"] == 0


def test_idle_connections_report_memory_connect_rate_and_background_cpu(
    chat_server: Target,
) -> None:
    options = options_for("tiny", first_port=0, idle_seconds=2.0)
    result = idle(chat_server, options)
    summary = result.summary
    assert summary["connections"] == options.idle_connections
    assert not summary["failures"]  # no connection refused or failed, by kind
    assert summary["connects_per_s"] > 0
    # Measured over the idle phase only: a running server process uses some CPU, and far
    # less than a core while nothing is sent.
    assert 0 <= summary["idle_cpu_percent"] < 50
    assert summary["idle_seconds"] == 2.0


@pytest.fixture(scope="module")
def relay_result() -> Result:
    relay = start_relay(port=free_ports(1)[0])
    try:
        return one_to_one(relay, options_for("tiny", first_port=0, rates=[20]))
    finally:
        relay.stop()


def test_relay_runs_the_same_workload(relay_result: Result) -> None:
    assert relay_result.calibration
    assert relay_result.summary["lost"] == 0
    assert relay_result.summary["duplicates"] == 0
    assert relay_result.rows[0]["delivered"] == relay_result.rows[0]["owed"] > 0


def test_channels_tutorial_runs_the_same_workload_and_is_reported(
    relay_result: Result, tmp_path: Path
) -> None:
    tutorial = start_channels_tutorial(port=free_ports(1)[0], redis_url=TUTORIAL_REDIS_URL)
    try:
        result = one_to_one(tutorial, options_for("tiny", first_port=0, rates=[20]))
    finally:
        tutorial.stop()
    assert result.calibration
    assert result.summary["acknowledged"] > 0
    assert result.summary["lost"] == 0
    assert result.summary["duplicates"] == 0
    assert result.summary["gaps"] == 0
    assert result.rows[0]["delivered"] == result.rows[0]["owed"] > 0
    folder = report.write(
        [relay_result, result], workload="1:1", command="test", options={}, root=tmp_path
    )
    text = (folder / "report.md").read_text()
    # Its headline figures beside the relay's, and its steps (p50/p99) in its own section.
    headline = next(
        line
        for line in text.splitlines()
        if line.startswith("| channels-tutorial | max sustained msgs/s")
    )
    cells = [cell.strip() for cell in headline.strip("|").split("|")]
    # value, the relay's value, the ratio to it; none to itself
    assert cells[2]
    assert cells[3]
    assert cells[4].endswith(("x", "n/a"))
    assert cells[5:] == ["", ""]
    assert "## channels-tutorial" in text
    assert "| offered |" in text.split("## channels-tutorial")[1]
    assert "ratio to relay" in text


def _result(target: str, rate: float, *, calibration: bool = False) -> Result:
    return Result(
        workload="1:1",
        target=target,
        summary={"max_sustained_rate": rate},
        calibration=calibration,
    )


def test_headline_table_compares_with_every_calibration_target() -> None:
    table = report.headline_table(
        [
            _result("relay", 4000.0, calibration=True),
            _result("channels-tutorial", 1000.0, calibration=True),
            _result("chat", 500.0),
        ]
    ).splitlines()
    assert table[0] == (
        "| target | figure | value | relay | ratio to relay "
        "| channels-tutorial | ratio to channels-tutorial |"
    )
    rows = {line.split(" | ")[0]: line for line in table if "max sustained" in line}
    # The relay is the baseline: no row of its own; the tutorial is compared with it.
    assert set(rows) == {"| channels-tutorial", "| chat"}
    assert rows["| channels-tutorial"].endswith("| 4,000 | 0.25x |  |  |")
    assert rows["| chat"].endswith("| 4,000 | 0.12x | 1,000 | 0.50x |")
    assert report.fastest([_result("relay", 1.0, calibration=True), _result("chat", 2.0)]) is None


def test_calibration_targets_run_first_and_can_be_skipped() -> None:
    def labels(*flags: str) -> list[str]:
        return [label for label, _ in plan_targets(build_options(parse_args(["run", *flags])))]

    assert labels("oneone") == ["relay", "channels tutorial", "chat (embedded, uvicorn)"]
    assert labels("oneone", "--no-tutorial") == ["relay", "chat (embedded, uvicorn)"]
    assert labels("oneone", "--no-relay", "--no-tutorial") == ["chat (embedded, uvicorn)"]
