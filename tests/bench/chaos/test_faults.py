"""Each named fault does what its name says, and the cluster is healthy after its stop;
the seeded schedule is repeatable and the runner records a timeline.

The schedule tests need nothing and run on both configurations; the faults act on the
session's cluster (production configuration only, see conftest.py).
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
import redis

from bench.chaos.cluster import Cluster
from bench.chaos.faults import FAULTS, Fault, Workload
from bench.chaos.schedule import Schedule, aimed_target, run
from bench.chaos.services import process_state, wait_until

from .conftest import PRESENCE_TICK, PRESENCE_TIMEOUT, needs_cluster, signs_up, wait_signs_up


class CountingWorkload:
    """The workload's side of the faults: counts ``reconnect_burst``'s requests and says
    where its devices are."""

    def __init__(self, devices: list[int] | None = None) -> None:
        self.reconnects = 0
        self.devices = devices or []

    def reconnect_all(self) -> None:
        self.reconnects += 1

    def devices_per_server(self) -> list[int]:
        return self.devices


def readiness(http_url: str, timeout: float = 3.0) -> tuple[int, Any] | None:
    """``/readyz``'s status and body, or None when it did not answer within ``timeout``."""
    try:
        response = httpx.get(http_url + "/readyz", timeout=timeout)
    except httpx.TimeoutException:
        return None
    return response.status_code, response.json()


def _ready_body() -> dict[str, Any]:
    return {"status": "ready", "checks": {"process": "ok", "database": "ok", "redis": "ok"}}


def fault(name: str, target: int = 0, workload: Workload | None = None) -> Fault:
    return FAULTS[name](target, workload)


def assert_healthy(cluster: Cluster) -> None:
    cluster.wait_healthy()
    for http_url in cluster.http_urls:
        wait_signs_up(http_url)
    assert cluster.worker_consumes(), cluster.worker.log_text()[-4000:]


# --- the schedule (no cluster) -------------------------------------------------------------
def test_same_seed_same_schedule_and_every_fault_once_by_default() -> None:
    first = Schedule(7, duration=2, gap=1, servers=3)
    assert first == Schedule(7, duration=2, gap=1, servers=3)
    assert first != Schedule(8, duration=2, gap=1, servers=3)
    assert sorted(entry.fault for entry in first.entries) == sorted(FAULTS)
    assert {entry.target for entry in first.entries} <= {0, 1, 2}
    # One at a time, with the gap of quiet before each and after the last.
    assert first.entries[0].start == 1
    for before, after in zip(first.entries, first.entries[1:], strict=False):
        assert after.start == before.end + 1
    assert first.total == first.entries[-1].end + 1


def test_listed_faults_run_as_often_as_listed_and_unknown_ones_are_refused() -> None:
    schedule = Schedule(1, ["kill_server", "kill_server", "reconnect_burst"], duration=1, gap=1)
    assert sorted(entry.fault for entry in schedule.entries) == [
        "kill_server",
        "kill_server",
        "reconnect_burst",
    ]
    with pytest.raises(ValueError, match="unknown faults"):
        Schedule(1, ["unplug_the_machine"])


def test_per_server_faults_aim_at_the_server_holding_the_most_devices() -> None:
    kill = FAULTS["kill_server"]
    assert aimed_target(kill, 0, CountingWorkload([1, 9, 3])) == 1
    # A tie keeps the seeded choice; no workload, or a fault on no server, keeps it too.
    assert aimed_target(kill, 2, CountingWorkload([4, 0, 4])) == 2
    assert aimed_target(kill, 2, None) == 2
    assert aimed_target(FAULTS["restart_redis"], 0, CountingWorkload([0, 9])) == 0
    assert {name for name, fault in FAULTS.items() if fault.per_server} == {
        "kill_server",
        "drain_server",
        "pause_server",
        "partition_redis",
        "partition_postgres",
    }


def test_minimum_windows_lengthen_only_their_fault() -> None:
    schedule = Schedule(3, duration=1, gap=1, min_windows={"pause_server": 9})
    windows = {entry.fault: entry.window for entry in schedule.entries}
    assert windows.pop("pause_server") == 9
    assert set(windows.values()) == {1}


# --- the faults (the session's cluster) ----------------------------------------------------
@needs_cluster
@pytest.mark.e2e
class TestFaults:
    def test_kill_server_kills_it_and_stop_restarts_it_on_its_port(self, cluster: Cluster) -> None:
        server, other = cluster.servers
        pid, port = server.pid, server.port
        assert pid is not None
        restarts: list[str] = []
        cluster.listeners.append(restarts.append)
        kill = fault("kill_server", 0)
        try:
            kill.start(cluster)
            assert process_state(pid) == ""  # reaped: gone, not a zombie
            assert not server.answers()
            assert signs_up(other.http_url)  # the other server carries on
            kill.stop(cluster)
        finally:
            cluster.listeners.remove(restarts.append)
        assert server.port == port
        assert server.pid not in (None, pid)
        assert restarts == [f"server 0 restarted (pid {server.pid})"]
        assert_healthy(cluster)

    def test_pause_server_stops_it_past_the_presence_timeout(self, cluster: Cluster) -> None:
        server = cluster.servers[1]
        assert server.pid is not None
        pause = fault("pause_server", 1)
        assert pause.min_window(cluster) > PRESENCE_TIMEOUT + PRESENCE_TICK
        pause.start(cluster)
        try:
            assert process_state(server.pid) == "T"
            assert not server.answers(timeout=1)  # its socket is open, nothing answers
            assert signs_up(cluster.http_urls[0])
        finally:
            pause.stop(cluster)
        assert process_state(server.pid) in ("R", "S")
        assert_healthy(cluster)

    def test_restart_redis_loses_every_key(self, cluster: Cluster) -> None:
        client = redis.Redis.from_url(cluster.redis_url, socket_timeout=5)
        client.set("chaos:before-restart", "1")
        restart = fault("restart_redis")
        restart.start(cluster)
        try:
            assert not cluster.redis.pings()
        finally:
            restart.stop(cluster)
        assert cluster.redis.pings()
        assert client.get("chaos:before-restart") is None
        client.close()
        assert_healthy(cluster)

    def test_restart_postgres_ends_transactions_in_flight(self, cluster: Cluster) -> None:
        in_flight = psycopg.connect(cluster.database_url)
        in_flight.execute("CREATE TEMPORARY TABLE chaos_probe (n int)")
        in_flight.execute("INSERT INTO chaos_probe VALUES (1)")  # open, uncommitted
        restart = fault("restart_postgres")
        restart.start(cluster)
        try:
            assert not cluster.postgres.accepts_connections()
            with pytest.raises(psycopg.OperationalError):
                in_flight.execute("SELECT n FROM chaos_probe")
        finally:
            restart.stop(cluster)
            in_flight.close()
        assert cluster.postgres.accepts_connections()
        assert_healthy(cluster)

    def test_kill_worker_and_queued_tasks_run_after_its_restart(self, cluster: Cluster) -> None:
        process = cluster.worker.process
        assert process is not None
        kill = fault("kill_worker")
        kill.start(cluster)
        try:
            assert process.returncode == -9
            # Until Redis sees the dead worker's connection close, its blocked BRPOP can
            # still pop a task into a dead socket (the broker's at-most-once window, which
            # the checker measures); this test is about tasks queued after that.
            wait_until(
                lambda: cluster.worker_redis_proxy.open_connections == 0,
                "the killed worker's broker connections stayed open",
                10,
            )
            queued = cluster.send_probe_task()  # waits in the broker meanwhile
        finally:
            kill.stop(cluster)
        # A restarted worker boots, reconnects and drains its queue: on a loaded 2-core
        # machine that was seen to take close to 30 s (CI, 2026-12-03).
        done = cluster.wait_task_done(queued, timeout=90)
        assert done, cluster.worker.log_text()[-4000:]
        assert_healthy(cluster)

    @pytest.mark.parametrize("mode", ["reset", "blackhole"])
    @pytest.mark.parametrize("name", ["partition_redis", "partition_postgres"])
    def test_partition_cuts_one_server_off_one_service(
        self, cluster: Cluster, name: str, mode: str
    ) -> None:
        partition = FAULTS[name](0, None, mode=mode)  # type: ignore[call-arg]
        partition.start(cluster)
        try:
            # A sign-up needs both (throttle counters in Redis, the user in PostgreSQL).
            assert not signs_up(cluster.http_urls[0])
            assert signs_up(cluster.http_urls[1])
            assert cluster.redis.pings()
            assert cluster.postgres.accepts_connections()
            # What a load balancer's probe sees: the cut server is not ready (a refused
            # connection names the service; a silent one outlasts the probe's timeout),
            # the other one is.
            check = "redis" if name == "partition_redis" else "database"
            cut = readiness(cluster.http_urls[0])
            assert cut is None or (cut[0] == 503 and cut[1]["checks"][check] != "ok"), cut
            assert readiness(cluster.http_urls[1]) == (200, _ready_body())
        finally:
            partition.stop(cluster)
        assert_healthy(cluster)
        wait_until(lambda: readiness(cluster.http_urls[0]) == (200, _ready_body()), "ready")

    def test_reconnect_burst_asks_the_workload(self, cluster: Cluster) -> None:
        workload = CountingWorkload()
        burst = fault("reconnect_burst", workload=workload)
        burst.start(cluster)
        burst.stop(cluster)
        assert workload.reconnects == 1
        with pytest.raises(ValueError, match="workload"):
            fault("reconnect_burst").start(cluster)

    def test_run_applies_the_schedule_and_records_the_timeline(self, cluster: Cluster) -> None:
        names = ["reconnect_burst", "kill_server", "partition_postgres"]
        schedule = Schedule.for_cluster(cluster, seed=5, faults=names, duration=0.5, gap=0.2)
        # Every device on the last server: the per-server faults are aimed there.
        workload = CountingWorkload([0] * (len(cluster.servers) - 1) + [6])
        timeline = run(cluster, schedule, workload)
        assert workload.reconnects == 1
        busiest = len(cluster.servers) - 1
        assert [(w[0], w[1]) for w in timeline.windows()] == [
            (entry.fault, busiest if FAULTS[entry.fault].per_server else entry.target)
            for entry in schedule.entries
        ]
        for (_, _, started, stopped), entry in zip(
            timeline.windows(), schedule.entries, strict=True
        ):
            # On time, to the timer's resolution (a fault's start may take longer).
            assert started >= entry.start - 0.01
            assert stopped >= entry.end - 0.01
        kinds = [event.kind for event in timeline.events]
        assert kinds.count("fault_healed") == len(names)
        assert any(
            "restarted" in event.detail for event in timeline.events if event.kind == "process"
        )
        assert timeline.events[-1].at <= schedule.total + 30
        assert_healthy(cluster)

    def test_run_refuses_a_pause_shorter_than_the_presence_timeout(self, cluster: Cluster) -> None:
        too_short = Schedule(1, ["pause_server"], duration=PRESENCE_TIMEOUT / 2, gap=0)
        with pytest.raises(ValueError, match="at least"):
            run(cluster, too_short)
        wait_until(lambda: all(s.answers() for s in cluster.servers), "servers answer")
