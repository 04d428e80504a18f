"""The report: a table on the terminal, and Markdown + PNG plots in a results folder.

Every chat figure is shown beside the calibration targets' (the relay's, the Django
Channels tutorial's) and as ratios to them, and the issue's targets are checked where a
workload measures them.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .workloads import Result

# What every workload that delivers messages checks: the ledger's verdict.
_DELIVERY_CHECKS = [("lost", "lost deliveries", False), ("duplicates", "duplicates", False)]

# (workload, summary key, label, higher is better)
HEADLINES: dict[str, list[tuple[str, str, bool]]] = {
    "1:1": [
        ("max_sustained_rate", "max sustained msgs/s (p99 <= 100 ms, no loss)", True),
        ("server_cpu_ms_per_msg", "server CPU ms per message (median of steps)", False),
        *_DELIVERY_CHECKS,
    ],
    "group": [
        ("max_sustained_deliveries_per_s", "max deliveries/s (p99 <= 250 ms, no loss)", True),
        ("max_deliveries_per_s_at_p99_100ms", "max deliveries/s (p99 <= 100 ms, no loss)", True),
        ("server_cpu_ms_per_msg", "server CPU ms per sent message (median of steps)", False),
        *_DELIVERY_CHECKS,
    ],
    "idle": [
        ("kib_per_connection", "server KiB per idle connection", False),
        ("connects_per_s", "authenticated connections opened/s", True),
        ("idle_cpu_percent", "server CPU % of a core while they idle", False),
    ],
    "storm": [
        ("all_live_s", "seconds until all devices live", False),
        ("reconnects_per_s", "reconnect+sync per second", True),
        *_DELIVERY_CHECKS,
    ],
    "history": [
        ("store_p99_ms_random", "store page read p99 ms (random page)", False),
        ("rest_p99_ms_random_c1", "REST page read p99 ms (random page)", False),
    ],
    "heartbeats": [
        ("per_process", "max heartbeats/s per process (p99 <= 100 ms)", True),
        ("database_writes_during_heartbeats", "database rows written", False),
        ("offline_fanout_p99_ms", "presence offline fan-out p99 ms (all at once)", False),
        ("online_fanout_p99_ms", "presence online fan-out p99 ms (all at once)", False),
        ("presence_events_missing", "presence events missing", False),
    ],
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(value: Any, reference: Any) -> str:
    if isinstance(value, int | float) and isinstance(reference, int | float) and reference:
        if math.isnan(float(value)) or math.isnan(float(reference)):
            return "n/a"
        return f"{value / reference:.2f}x"
    return "n/a"


def headline_table(results: list[Result]) -> str:
    """Each target's headline figures, beside every calibration target's and as ratios.

    The first calibration target (the relay) is the baseline: it has rows of its own only
    when it ran alone; the others (the Channels tutorial) have rows compared with it."""
    references = [r for r in results if r.calibration]
    shown = [r for r in results if not references or r is not references[0]] or results
    columns = ["target", "figure", "value"]
    for reference in references:
        columns += [reference.target, f"ratio to {reference.target}"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for result in shown:
        for key, label, _ in HEADLINES.get(result.workload, []):
            value = result.summary.get(key, float("nan"))
            cells = [result.target, label, _fmt(value)]
            for reference in references:
                if reference is result:
                    cells += ["", ""]
                    continue
                reference_value = reference.summary.get(key, float("nan"))
                cells += [_fmt(reference_value), _ratio(value, reference_value)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fastest(results: list[Result]) -> str | None:
    chats = [r for r in results if not r.calibration]
    headlines = HEADLINES.get(chats[0].workload, []) if chats else []
    if len(chats) < 2 or not headlines:
        return None
    key, label, higher = headlines[0]
    ranked = sorted(
        chats,
        key=lambda r: float(r.summary.get(key, float("nan")) or 0.0),
        reverse=higher,
    )
    return f"Best on '{label}': **{ranked[0].target}** ({_fmt(ranked[0].summary.get(key))})."


def rows_table(result: Result) -> str:
    """One Markdown table per run of rows with the same columns."""
    if not result.rows:
        return "_no rows_"
    tables: list[str] = []
    columns: list[str] = []
    for row in result.rows:
        row_columns = [c for c in row if c != "step"]
        if row_columns != columns:
            columns = row_columns
            tables += ["", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        tables.append("| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(tables).strip()


def plot_sweeps(results: list[Result], folder: Path, workload: str) -> list[str]:
    """Latency (p50, p99) and delivered/s against offered rate, one line per target."""
    sweeps = [r for r in results if r.rows and "offered" in r.rows[0]]
    if not sweeps:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slug = workload.replace(":", "to")
    figure, (latency_axes, rate_axes) = plt.subplots(1, 2, figsize=(13, 5))
    for result in sweeps:
        _plot_target(latency_axes, rate_axes, result)
    unit = "pings/s" if workload == "heartbeats" else "sends/s"
    latency_axes.set(
        xlabel=f"offered {unit}",
        ylabel="latency (ms, log)",
        yscale="log",
        title=f"{workload}: latency",
    )
    rate_axes.set(
        xlabel=f"offered {unit}", ylabel="handled per second", title=f"{workload}: throughput"
    )
    for axes in (latency_axes, rate_axes):
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7)
    figure.tight_layout()
    name = f"{slug}-latency.png"
    figure.savefig(folder / name, dpi=110)
    plt.close(figure)
    return [name]


def _plot_target(latency_axes: Any, rate_axes: Any, result: Result) -> None:
    """One target's lines: p99 and p50 latency, and the rate it handled, per offered rate."""
    rows = sorted(
        (r for r in result.rows if "offered" in r and not r.get("at_70_percent")),
        key=lambda r: r["offered"],
    )
    offered = [r["offered"] for r in rows]
    (line,) = latency_axes.plot(
        offered, [r["p99"] for r in rows], marker="o", label=f"{result.target} p99"
    )
    # One colour per target: solid p99, dashed p50.
    latency_axes.plot(
        offered,
        [r["p50"] for r in rows],
        marker=".",
        linestyle="--",
        color=line.get_color(),
        label=f"{result.target} p50",
    )
    rate_key = "delivered_per_s" if "delivered_per_s" in rows[0] else "handled_per_s"
    rate_axes.plot(
        offered,
        [r[rate_key] for r in rows],
        marker="o",
        color=line.get_color(),
        label=result.target,
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def _command_output(*args: str) -> str:
    try:
        completed = subprocess.run(  # noqa: S603 (fixed version queries)
            args, capture_output=True, text=True, check=False, timeout=10
        )
        return completed.stdout.strip()
    except OSError:
        return "-"


def environment() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in (
            "django",
            "channels",
            "uvicorn",
            "daphne",
            "granian",
            "websockets",
            "uvloop",
            "psycopg",
            "redis",
        )
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} cores, {memory_kib / 2**20:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "postgres": _command_output("psql", "--version"),
        "redis": _command_output("redis-server", "--version"),
        "load average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def write(
    results: list[Result], *, workload: str, command: str, options: dict[str, Any], root: Path
) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = root / f"{stamp}-{workload}"
    folder.mkdir(parents=True, exist_ok=True)
    plots = plot_sweeps(results, folder, workload)
    info = environment()
    lines = [
        f"# Benchmark: {workload}",
        "",
        f"Command: `{command}`",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        "",
        "## Headline figures",
        "",
        headline_table(results),
        "",
    ]
    best = fastest(results)
    if best:
        lines += [best, ""]
    for plot in plots:
        lines += [f"![{plot}]({plot})", ""]
    for result in results:
        lines += [f"## {result.target}", "", rows_table(result), ""]
        if result.summary:
            lines += [
                "Summary: " + ", ".join(f"{k} {_fmt(v)}" for k, v in result.summary.items()),
                "",
            ]
        lines += [f"Note: {note}" for note in result.notes]
        for title, summary in result.profiles.items():
            lines += ["", f"### Server profile, {title}", "", summary]
        lines.append("")
    (folder / "report.md").write_text("\n".join(lines))
    (folder / "results.json").write_text(
        json.dumps(
            {"environment": info, "options": options, "results": [asdict(r) for r in results]},
            indent=1,
            default=str,
        )
    )
    return folder
