"""The fault-injection report: Markdown figures per fault and a timeline plot.

``write(folder, ledger, result, timeline=..., windows=..., command=...)`` writes
``report.md`` and ``timeline.png`` into ``folder`` and returns the Markdown. The plot
shows sends/s, deliveries/s (stream events carrying a message, per device) and connected
(live) devices over time, with each fault window shaded and named and each timeline
event ``(time.monotonic() seconds, text)`` from the schedule runner marked.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checker import MESSAGE_EVENTS, CheckResult, FaultWindow, WindowFigures
from .ledger import ChaosLedger

PLOT_NAME = "timeline.png"
BIN_SECONDS = 1.0


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def _offline(spans: list[float]) -> str:
    if not spans:
        return "-"
    return f"{statistics.median(spans):.1f} / {max(spans):.1f}"


def _errors(figure: WindowFigures) -> str:
    return ", ".join(f"{kind} x{count}" for kind, count in figure.errors.most_common()) or "none"


def figures_table(result: CheckResult) -> str:
    lines = [
        "| fault | acknowledged | lost | duplicated | reordered | unacknowledged but stored "
        "| pushes missing | s until all devices live | s offline per device (median / max) "
        "| errors seen by clients |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {f.name} | {f.acknowledged} | {f.lost} | {f.duplicated} | {f.reordered} "
        f"| {f.unacknowledged_stored} | {f.push_missing} | {_seconds(f.live_again_seconds)} "
        f"| {_offline(f.offline_seconds)} | {_errors(f)} |"
        for f in result.windows
    ]
    return "\n".join(lines)


def markdown(result: CheckResult, *, command: str = "", plot: str | None = PLOT_NAME) -> str:
    totals = result.totals()
    verdict = "PASS" if result.ok else "FAIL"
    parts = [f"# Fault injection: {verdict}", ""]
    if command:
        parts += [f"Command: `{command}`", ""]
    parts += [figures_table(result), "", "## Totals", ""]
    parts += [f"- {name.replace('_', ' ')}: {value}" for name, value in totals.items()]
    if result.presence is not None:
        state = "settled" if result.presence.settled else "did NOT settle"
        parts.append(f"- presence {state} after {result.presence.seconds:.1f} s")
        parts += [
            f"  - user {user}: expected {expected}, server said {seen}"
            for user, (expected, seen) in sorted(result.presence.wrong.items())
        ]
    details = [
        ("Lost (message, device)", [f"{f.message_id} @ {f.where}" for f in result.lost]),
        ("Duplicated", [f"{f.message_id} @ {f.where}" for f in result.duplicated]),
        ("Reordered", [f"{f.message_id} @ {f.where}" for f in result.reordered]),
        (
            "Gaps (device: cursor -> seq)",
            [f"{g.device}: {g.cursor} -> {g.seq}" for g in result.gaps],
        ),
        ("Pushed twice", [f"{a}: {ids}" for a, ids in result.push_duplicates.items()]),
        ("Never pushed", [f"{a}: {ids}" for a, ids in result.push_missing.items()]),
    ]
    for title, rows in details:
        if rows:
            parts += ["", f"## {title}", "", *[f"- {row}" for row in rows[:50]]]
            if len(rows) > 50:
                parts.append(f"- ... and {len(rows) - 50} more")
    if plot:
        parts += ["", f"![timeline]({plot})"]
    return "\n".join(parts) + "\n"


def write(
    folder: Path,
    ledger: ChaosLedger,
    result: CheckResult,
    *,
    timeline: Sequence[tuple[float, str]] = (),
    windows: Sequence[FaultWindow] = (),
    command: str = "",
) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    plot_timeline(folder / PLOT_NAME, ledger, timeline=timeline, windows=windows)
    text = markdown(result, command=command)
    (folder / "report.md").write_text(text)
    return text


def _per_second(times: Sequence[float], origin: float, bins: int) -> list[int]:
    counts = [0] * bins
    for at in times:
        index = int((at - origin) / BIN_SECONDS)
        if 0 <= index < bins:
            counts[index] += 1
    return counts


def connected_over_time(ledger: ChaosLedger, origin: float) -> tuple[list[float], list[int]]:
    """A step line: (seconds since origin, devices live from then on)."""
    live: set[str] = set()
    xs, ys = [0.0], [0]
    for change in sorted(ledger.timeline, key=lambda change: change.at):
        if change.live:
            live.add(change.device)
        else:
            live.discard(change.device)
        xs.append(change.at - origin)
        ys.append(len(live))
    return xs, ys


def plot_timeline(
    path: Path,
    ledger: ChaosLedger,
    *,
    timeline: Sequence[tuple[float, str]] = (),
    windows: Sequence[FaultWindow] = (),
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    origin = ledger.started_at
    sends = [attempt.at for attempt in ledger.attempts]
    deliveries = [event.at for event in ledger.events if event.type in MESSAGE_EVENTS]
    ends = [*sends, *deliveries, *(change.at for change in ledger.timeline), origin + 1]
    bins = int((max(ends) - origin) / BIN_SECONDS) + 1
    seconds = [index * BIN_SECONDS for index in range(bins)]
    figure, axes = plt.subplots(3, 1, figsize=(13, 8), sharex=True)
    axes[0].step(seconds, _per_second(sends, origin, bins), where="post")
    axes[0].set(ylabel="sends/s (with retries)")
    axes[1].step(seconds, _per_second(deliveries, origin, bins), where="post", color="tab:green")
    axes[1].set(ylabel="deliveries/s")
    xs, ys = connected_over_time(ledger, origin)
    axes[2].step(xs, ys, where="post", color="tab:purple")
    axes[2].set(
        ylabel="live devices", xlabel="seconds since start", ylim=(0, len(ledger.devices) + 1)
    )
    for axis in axes:
        _mark_faults(axis, origin, timeline, windows, labels=axis is axes[0])
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _mark_faults(
    axis: Any,
    origin: float,
    timeline: Sequence[tuple[float, str]],
    windows: Sequence[FaultWindow],
    *,
    labels: bool,
) -> None:
    """Shade each fault window and draw each timeline event; name them on one axis only."""
    for window in windows:
        axis.axvspan(window.start - origin, window.end - origin, color="tab:red", alpha=0.15)
    for at, _ in timeline:
        axis.axvline(at - origin, color="grey", linewidth=0.6, linestyle=":")
    if not labels:
        return
    for window in windows:
        axis.annotate(
            window.name,
            (window.start - origin, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            va="top",
            rotation=90,
        )
    for at, text in timeline:
        axis.annotate(
            text, (at - origin, 0.0), xycoords=("data", "axes fraction"), fontsize=6, rotation=90
        )
