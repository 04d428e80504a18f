"""Workload 5, history pages; and the database helpers it shares with the heartbeat workload.

Database work runs in a subprocess with the server's own environment (``bench.history_db``)
so that the coordinator never imports Django with another configuration.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .options import Options
from .stats import latency_summary
from .targets import ROOT, Target
from .workload import Result, log, make_population, result_for

# PostgreSQL publishes a backend's table statistics when it has been idle for up to 10 s.
STATS_SETTLE_SECONDS = 11.0


def _run(env: dict[str, str], *args: str) -> Any:
    completed = subprocess.run(  # noqa: S603 (our own module, fixed arguments)
        [sys.executable, "-m", "bench.history_db", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench.history_db {args[0]} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def load(env: dict[str, str], *, conversation_id: int, sender_id: int, count: int) -> Any:
    return _run(
        env,
        "load",
        "--conversation",
        str(conversation_id),
        "--sender",
        str(sender_id),
        "--count",
        str(count),
    )


def probe_store(
    env: dict[str, str], *, conversation_id: int, first_id: int, last_id: int, reads: int
) -> dict[str, list[float]]:
    result: dict[str, list[float]] = _run(
        env,
        "probe",
        "--conversation",
        str(conversation_id),
        "--first-id",
        str(first_id),
        "--last-id",
        str(last_id),
        "--reads",
        str(reads),
    )
    return result


def read_pages_http(
    base_urls: Sequence[str],
    *,
    token: str,
    conversation_id: int,
    first_id: int,
    last_id: int,
    reads: int,
    concurrency: int,
    position: str,
) -> dict[str, Any]:
    """GET 50-message pages (newest, or before a random id) and time each request."""

    async def run() -> dict[str, Any]:
        generator = random.Random(11)
        latencies: list[float] = []
        limit = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {token}"}

        async def one(client: httpx.AsyncClient, index: int) -> None:
            params = {"limit": "50"}
            if position == "random":
                params["before"] = str(generator.randint(first_id, last_id))
            base = base_urls[index % len(base_urls)]
            url = f"{base}/api/v1/conversations/{conversation_id}/messages"
            async with limit:
                started = time.perf_counter()
                response = await client.get(url, params=params, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()

        async with httpx.AsyncClient(timeout=60) as client:
            await one(client, 0)  # warm up the connection
            latencies.clear()
            started = time.perf_counter()
            await asyncio.gather(*(one(client, index) for index in range(reads)))
            elapsed = time.perf_counter() - started
        return {"latencies": latencies, "pages_per_s": reads / elapsed}

    return asyncio.run(run())


def database_writes_probe(target: Target) -> Callable[[], int | str]:
    """Start counting database writes; the returned function stops and returns the count.

    PostgreSQL: inserted + updated + deleted rows per table of the benchmark database
    (``pg_stat_user_tables``), read after the statistics settle. SQLite: whether the
    database or its WAL file changed at all.
    """
    if target.calibration:
        return lambda: 0
    if target.database_url:
        return _postgres_writes_probe(target.database_url)
    return _sqlite_changes_probe(Path(target.env["DATA_DIR"]))


def _postgres_writes_probe(url: str) -> Callable[[], int | str]:
    import psycopg

    # Per table, so that a report can say what wrote.
    query = "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"

    def read() -> dict[str, int]:
        with psycopg.connect(url) as conn:
            return {str(name): int(count) for name, count in conn.execute(query)}

    def settled() -> dict[str, int]:
        # Earlier writes (the clients' first acks) may be published late: wait until
        # the counters stop moving before taking a reading.
        time.sleep(STATS_SETTLE_SECONDS)
        current = read()
        deadline = time.monotonic() + 3 * STATS_SETTLE_SECONDS
        while time.monotonic() < deadline:
            time.sleep(2.0)
            latest = read()
            if latest == current:
                break
            current = latest
        return current

    before = settled()

    def stop() -> int | str:
        time.sleep(STATS_SETTLE_SECONDS)
        changed = {
            name: count - before.get(name, 0)
            for name, count in read().items()
            if count != before.get(name, 0)
        }
        if not changed:
            return 0
        detail = ", ".join(f"{name} {count}" for name, count in sorted(changed.items()))
        return f"{sum(changed.values())} ({detail})"

    return stop


def _sqlite_changes_probe(data_dir: Path) -> Callable[[], int | str]:
    def signature() -> list[tuple[int, int]]:
        files = [data_dir / "chat.sqlite3", data_dir / "chat.sqlite3-wal"]
        return [(f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists()]

    first = signature()
    return lambda: 0 if signature() == first else "some (SQLite files changed)"


def history_pages(target: Target, options: Options) -> Result:
    result = result_for(target, "history")
    if target.calibration:
        result.notes.append(f"the {target.name} keeps no history")
        return result
    population = make_population(target, users=2, group_size=2)
    conversation = next(iter(population.conversations.values()))
    log(f"  loading {options.history_messages:,} messages ...")
    loaded = load(
        target.env,
        conversation_id=conversation.id,
        sender_id=conversation.member_ids[0],
        count=options.history_messages,
    )
    log(f"  loaded in {loaded['seconds']:.1f} s ({loaded['rows_per_s']:,.0f} rows/s)")
    store = probe_store(
        target.env,
        conversation_id=conversation.id,
        first_id=loaded["first_id"],
        last_id=loaded["last_id"],
        reads=options.history_reads,
    )
    pages = _PageReads(
        base_urls=target.base_urls,
        token=population.devices[1].token,
        conversation_id=conversation.id,
        loaded=loaded,
        reads=options.history_reads,
    )
    result.rows += _rest_rows(pages) + _store_rows(store)
    for row in result.rows:
        log(
            f"  {row['measured']:<38} {row['position']:<7} x{row['concurrency']}: "
            f"p50 {row['p50']:.2f}  p99 {row['p99']:.2f} ms"
        )
    result.summary = {
        "stored_messages": loaded["count"],
        "load_rows_per_s": loaded["rows_per_s"],
        "rest_p99_ms_random_c1": next(
            r["p99"]
            for r in result.rows
            if r["measured"].startswith("REST")
            and r["position"] == "random"
            and r["concurrency"] == 1
        ),
        "store_p99_ms_random": latency_summary(store["random"])["p99"],
    }
    return result


@dataclass(frozen=True)
class _PageReads:
    """Which history the REST reads page through, and how many pages each run reads."""

    base_urls: Sequence[str]
    token: str
    conversation_id: int
    loaded: dict[str, Any]  # what ``load`` reported: the id range among others
    reads: int


def _rest_rows(pages: _PageReads) -> list[dict[str, Any]]:
    """REST page latencies, one row per concurrency and cursor position."""
    rows: list[dict[str, Any]] = []
    for concurrency in (1, 8):
        for position in ("newest", "random"):
            timings = read_pages_http(
                pages.base_urls,
                token=pages.token,
                conversation_id=pages.conversation_id,
                first_id=pages.loaded["first_id"],
                last_id=pages.loaded["last_id"],
                reads=pages.reads,
                concurrency=concurrency,
                position=position,
            )
            rows.append(
                {
                    "measured": "REST GET, client side",
                    "position": position,
                    "concurrency": concurrency,
                    **latency_summary(timings["latencies"]),
                    "pages_per_s": timings["pages_per_s"],
                }
            )
    return rows


def _store_rows(store: dict[str, list[float]]) -> list[dict[str, Any]]:
    """In-process ``page_conversation`` latencies, one row per cursor position."""
    return [
        {
            "measured": "store.page_conversation, in process",
            "position": position,
            "concurrency": 1,
            **latency_summary(latencies),
            "pages_per_s": float("nan"),
        }
        for position, latencies in store.items()
    ]
