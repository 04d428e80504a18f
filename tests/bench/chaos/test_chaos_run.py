"""The short fault-injection run CI makes on every push: every fault once, and the run
fails on any acknowledged message lost, duplicated or reordered, or any push received
twice (docs/reliability.md).

It runs ``python -m bench chaos`` as an operator would and reads the report it writes.
That the checker can fail at all is shown in test_clients.py: a client that drops one
``message.new`` makes it report exactly that loss.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos.faults import FAULTS
from bench.targets import ROOT

from .conftest import needs_cluster


@needs_cluster
# Ten faults of 8 s with 3 s gaps (the rolling restart takes longer: three drains and
# restarts), the cluster's start, settling and the wait for pushes: about three minutes
# on this machine, over the suite's default per-test timeout.
@pytest.mark.timeout(400)
def test_every_fault_once_loses_duplicates_and_reorders_nothing(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "bench", "chaos",
        "--seed", "3", "--fault-seconds", "8", "--gap-seconds", "3",
        "--users", "6", "--rate", "15", "--out", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    output = run.stdout[-3000:] + run.stderr[-3000:]
    reports = list(tmp_path.glob("*-chaos/report.md"))
    assert len(reports) == 1, output
    report = reports[0]
    text = report.read_text()
    assert run.returncode == 0, text + output
    assert text.startswith("# Fault injection: PASS"), text
    for name in FAULTS:
        assert re.search(rf"^\| {name}( \(server \d\))? \| \d+ \| 0 \| 0 \| 0 \|", text, re.M), (
            f"{name} did not run, or lost/duplicated/reordered messages:\n{text}"
        )
    acknowledged = re.search(r"^- acknowledged: (\d+)$", text, re.M)
    assert acknowledged is not None, text
    assert int(acknowledged.group(1)) > 100, text
    # The phones in a pocket (--push-users, 2 by default) were pushed, never twice.
    pushes = re.search(r"^- pushes received: (\d+)$", text, re.M)
    assert pushes is not None, text
    assert int(pushes.group(1)) > 50, text
    assert re.search(r"^- push duplicates: 0$", text, re.M), text
    assert (report.parent / "timeline.png").stat().st_size > 10_000
