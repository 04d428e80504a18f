"""The named faults: each does one thing to a running ``Cluster`` and undoes it.

``start(cluster)`` injects the fault, ``stop(cluster)`` ends it and returns once the
cluster has what it needs to heal (a killed process restarted and ready, a stopped service
accepting connections again); whether the *product* heals is what the checker measures.
``target`` is the index of the chat server a per-server fault acts on (``per_server``);
the schedule aims those at the server holding the most devices when the fault starts.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from bench.chaos.cluster import ChatServer, Cluster
from bench.chaos.proxy import CutMode, Proxy


class Workload(Protocol):
    """What the faults and the schedule need from the client workload.

    Both are called from the fault runner's thread, not the workload's event loop: they
    hand the work over (``loop.call_soon_threadsafe``) and return at once (or with the
    answer).
    """

    def reconnect_all(self) -> None:
        """Drop every device's socket at once; each reconnects as its backoff says."""

    def devices_per_server(self) -> list[int]:
        """How many devices are connected to each chat server, by server index."""


class Fault:
    name: ClassVar[str]
    per_server: ClassVar[bool] = False  # acts on one chat server (``target``)

    def __init__(self, target: int = 0, workload: Workload | None = None) -> None:
        self.target = target
        self.workload = workload

    @classmethod
    def min_window(cls, cluster: Cluster) -> float:
        """The shortest time between start and stop for the fault to mean what it says."""
        return 0.0

    def server(self, cluster: Cluster) -> ChatServer:
        return cluster.servers[self.target]

    def start(self, cluster: Cluster) -> None:
        raise NotImplementedError

    def stop(self, cluster: Cluster) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.name}(target={self.target})"


class KillServer(Fault):
    """``kill -9`` of one chat server; restarted on the same port when the fault ends."""

    name = "kill_server"
    per_server = True

    def start(self, cluster: Cluster) -> None:
        self.server(cluster).kill()

    def stop(self, cluster: Cluster) -> None:
        cluster.restart_server(self.target)


class DrainServer(Fault):
    """SIGTERM of one chat server: it drains (its clients are sent elsewhere with 4012) and
    exits; restarted on the same port when the fault ends."""

    name = "drain_server"
    per_server = True

    def start(self, cluster: Cluster) -> None:
        code = self.server(cluster).drain()
        cluster.note(f"server {self.target} drained, exit code {code}")
        if code != 0:
            raise RuntimeError(f"server {self.target} exited with {code} after SIGTERM")

    def stop(self, cluster: Cluster) -> None:
        cluster.restart_server(self.target)


class RollingRestart(Fault):
    """A deploy: every chat server in turn gets SIGTERM, drains, exits and is started
    again, the next one only once the previous one is ready."""

    name = "rolling_restart"

    def start(self, cluster: Cluster) -> None:
        for index, server in enumerate(cluster.servers):
            code = server.drain()
            if code != 0:
                raise RuntimeError(f"server {index} exited with {code} after SIGTERM")
            cluster.restart_server(index)

    def stop(self, cluster: Cluster) -> None:
        pass  # every server is back already


class PauseServer(Fault):
    """``SIGSTOP`` of one chat server (its sockets stay open, nothing answers) for longer
    than the presence timeout plus a tick, then ``SIGCONT``."""

    name = "pause_server"
    per_server = True

    @classmethod
    def min_window(cls, cluster: Cluster) -> float:
        return cluster.presence_timeout + cluster.presence_tick + 1.0

    def start(self, cluster: Cluster) -> None:
        self.server(cluster).pause()

    def stop(self, cluster: Cluster) -> None:
        self.server(cluster).resume()


class RestartRedis(Fault):
    """``SHUTDOWN NOSAVE`` of Redis: every pub/sub connection, route key, presence lease,
    id lease and queued Celery task is gone; started again empty on the same port."""

    name = "restart_redis"

    def start(self, cluster: Cluster) -> None:
        cluster.redis.shutdown_nosave()

    def stop(self, cluster: Cluster) -> None:
        cluster.start_redis()


class RestartPostgres(Fault):
    """``pg_ctl stop -m fast`` (open transactions rolled back, sessions closed) while the
    workload writes; started again on the same port."""

    name = "restart_postgres"

    def start(self, cluster: Cluster) -> None:
        cluster.postgres.stop("fast")

    def stop(self, cluster: Cluster) -> None:
        cluster.start_postgres()


class KillWorker(Fault):
    """``kill -9`` of the Celery worker (tasks it took stay unacknowledged in the
    broker, new ones queue up); restarted when the fault ends."""

    name = "kill_worker"

    def start(self, cluster: Cluster) -> None:
        cluster.worker.kill()

    def stop(self, cluster: Cluster) -> None:
        cluster.restart_worker()


class _Partition(Fault):
    """Cut one server's proxy to a service (``blackhole`` by default: a silent
    partition; ``reset`` makes every connection fail at once)."""

    mode: ClassVar[CutMode] = "blackhole"
    per_server = True

    def __init__(
        self, target: int = 0, workload: Workload | None = None, *, mode: CutMode | None = None
    ) -> None:
        super().__init__(target, workload)
        self.cut_mode: CutMode = mode or self.mode

    def proxy(self, cluster: Cluster) -> Proxy:
        raise NotImplementedError

    def start(self, cluster: Cluster) -> None:
        self.proxy(cluster).cut(self.cut_mode)

    def stop(self, cluster: Cluster) -> None:
        self.proxy(cluster).restore()


class PartitionRedis(_Partition):
    """One chat server loses Redis (pub/sub, routes, rate limits); the others keep it."""

    name = "partition_redis"

    def proxy(self, cluster: Cluster) -> Proxy:
        return self.server(cluster).redis_proxy


class PartitionPostgres(_Partition):
    """One chat server loses PostgreSQL; the others keep it."""

    name = "partition_postgres"

    def proxy(self, cluster: Cluster) -> Proxy:
        return self.server(cluster).postgres_proxy


class ReconnectBurst(Fault):
    """No cluster action: every device drops its socket and reconnects at once."""

    name = "reconnect_burst"

    def start(self, cluster: Cluster) -> None:
        if self.workload is None:
            raise ValueError("reconnect_burst needs the workload (its reconnect_all hook)")
        self.workload.reconnect_all()

    def stop(self, cluster: Cluster) -> None:
        pass  # the devices come back on their own; the checker measures how fast


FAULTS: dict[str, type[Fault]] = {
    fault.name: fault
    for fault in (
        KillServer,
        DrainServer,
        RollingRestart,
        PauseServer,
        RestartRedis,
        RestartPostgres,
        KillWorker,
        PartitionRedis,
        PartitionPostgres,
        ReconnectBurst,
    )
}
