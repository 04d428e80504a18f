"""The production configuration, started by the fault runner on its own, isolated.

``Cluster`` starts, from one temporary folder and on free ports only:

* a PostgreSQL cluster of its own (``initdb``) and a ``redis-server`` without persistence;
* ``servers`` chat server processes (``manage.py serve``, started as the benchmark starts
  its production servers: ``bench.targets``) and one Celery worker;
* the local push receivers (``bench.push_receivers``), which the servers and the worker
  push to over the real Web Push and FCM protocols;
* one pair of TCP proxies (``bench.chaos.proxy``) per server and for the worker: each
  process reaches PostgreSQL and Redis only through its own pair, so the runner can cut
  one process off one service.

Migrations run once, before any server starts. On exit everything it started is stopped
by PID and the folder removed; the machine's shared PostgreSQL and Redis are never used.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.chaos.proxy import Proxy, ProxyHub
from bench.chaos.services import (
    CeleryWorker,
    PostgresServer,
    RedisServer,
    process_state,
    wait_until,
)
from bench.push_receivers import PushServices, b64url
from bench.targets import (
    ROOT,
    OwnedProcess,
    free_ports,
    log_tail,
    server_environment,
    spawn_server,
    wait_ready,
)

DATABASE_NAME = "chat"
# A periodic task that reads the database and has no other effect on an empty one.
PROBE_TASK = "notifications.prune_deliveries"
# How long a drained server may take to send its clients away (the servers' DRAIN_TIMEOUT).
DRAIN_TIMEOUT = 10.0


@dataclass(eq=False)
class ChatServer(OwnedProcess):
    """One ``manage.py serve`` process on a fixed port, behind its own proxy pair."""

    index: int
    port: int
    postgres_proxy: Proxy
    redis_proxy: Proxy
    env: dict[str, str]
    log: Path
    server: str = "uvicorn"
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def spawn(self) -> None:
        self.process = spawn_server(
            port=self.port, server=self.server, env=self.env, log=self.log, migrate=False
        )

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError(f"chat server {self.index} is not running")
        return self.process

    def wait_ready(self) -> None:
        wait_ready(self.http_url + "/api/schema/", self._running(), self.log)

    def answers(self, timeout: float = 2.0) -> bool:
        try:
            return httpx.get(self.http_url + "/api/schema/", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        super().kill()
        self.paused = False

    def drain(self) -> int:
        """SIGTERM: the server drains its clients and exits by itself (chatproject/
        lifecycle.py); its exit code. Killed if it is still there after the drain timeout."""
        process = self._running()
        process.terminate()
        try:
            code = process.wait(DRAIN_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            super().kill()
            raise RuntimeError(f"chat server {self.index} did not exit after SIGTERM") from None
        self.process = None
        return code

    def pause(self) -> None:
        pid = self._running().pid
        os.kill(pid, signal.SIGSTOP)
        self.paused = True
        # Signals are delivered asynchronously: return once it is really stopped.
        wait_until(lambda: process_state(pid) == "T", f"server {self.index} did not stop", 10)

    def resume(self) -> None:
        pid = self._running().pid
        os.kill(pid, signal.SIGCONT)
        self.paused = False
        wait_until(lambda: process_state(pid) != "T", f"server {self.index} did not resume", 10)

    def stop(self) -> None:
        if self.process is not None and self.paused:
            self.resume()  # a stopped process would not act on SIGTERM
        super().stop()


class Cluster:
    """A context manager: ``with Cluster(servers=2) as cluster: ...``.

    ``presence_timeout``, ``presence_tick`` and ``heartbeat_interval`` are the servers'
    ``PRESENCE_TIMEOUT``, ``PRESENCE_TICK`` and ``PRESENCE_HEARTBEAT_INTERVAL`` (the
    product's defaults unless given): short runs lower them so that a paused server can
    outlast the presence timeout in seconds. ``env`` adds variables for every process.
    """

    def __init__(
        self,
        servers: int = 2,
        *,
        server: str = "uvicorn",
        presence_timeout: float = 60.0,
        presence_tick: float = 10.0,
        heartbeat_interval: int = 25,
        env: dict[str, str] | None = None,
    ) -> None:
        if servers < 1:
            raise ValueError("a cluster has at least one chat server")
        self.server_count = servers
        self.server_kind = server
        self.presence_timeout = presence_timeout
        self.presence_tick = presence_tick
        self.heartbeat_interval = heartbeat_interval
        self.extra_env = dict(env or {})
        self.servers: list[ChatServer] = []
        self.listeners: list[Callable[[str], None]] = []  # told of every restart
        self.workdir = Path()
        self._started = False

    # --- what clients and the checker use -----------------------------------------------
    @property
    def ws_urls(self) -> list[str]:
        return [server.ws_url for server in self.servers]

    @property
    def http_urls(self) -> list[str]:
        return [server.http_url for server in self.servers]

    @property
    def database_url(self) -> str:
        """Direct to PostgreSQL, past every proxy (for the checker)."""
        return self.postgres.url(DATABASE_NAME)

    @property
    def redis_url(self) -> str:
        """Direct to Redis database 0 (the servers'), past every proxy."""
        return self.redis.url(0)

    def log_tail(self, characters: int = 3000) -> str:
        """The end of every log: servers, worker, Redis, PostgreSQL."""
        return log_tail(self.workdir, characters)

    def note(self, event: str) -> None:
        for listener in list(self.listeners):
            listener(event)

    # --- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="chaos-", dir=os.environ.get("BENCH_TMP")))
        self.workdir.chmod(0o755)  # the postgres user must reach its folder inside
        self._started = True
        try:
            self._start_services()
            self._migrate()
            self._start_processes()
        except BaseException:
            self.stop()
            raise

    def _start_services(self) -> None:
        postgres_port, redis_port = free_ports(2)
        self.postgres = PostgresServer(self.workdir / "pg", postgres_port)
        self.postgres.initialise()
        self.postgres.start()
        self.postgres.create_database(DATABASE_NAME)
        self.redis = RedisServer(self.workdir, redis_port)
        self.redis.start()
        self.push_receiver = PushServices()
        self.push_receiver.start()
        self.push_receiver.write_service_account(self.workdir / "fcm-service-account.json")
        self.proxies = ProxyHub()
        self.env = self._common_env()
        self.push_receiver.vapid_public_key = _write_vapid_key(Path(self.env["DATA_DIR"]))

    def _common_env(self) -> dict[str, str]:
        env = server_environment(self.workdir)
        env.update(
            SERVER_PROCESSES=str(self.server_count),
            DB_POOL_SIZE="8",  # servers + worker stay far below max_connections
            PRESENCE_TIMEOUT=str(self.presence_timeout),
            PRESENCE_TICK=str(self.presence_tick),
            PRESENCE_HEARTBEAT_INTERVAL=str(self.heartbeat_interval),
            FCM_CREDENTIALS_FILE=str(self.push_receiver.credentials_file),
            FCM_ENDPOINT=self.push_receiver.origin,
            PUSH_ALLOW_HTTP_ENDPOINTS="true",
            # Discovery (chat/registry/) notices a killed server within seconds, not 15.
            CHAT_SERVER_HEARTBEAT="0.5",
            CHAT_SERVER_TTL="2",
            DRAIN_TIMEOUT=str(DRAIN_TIMEOUT),
        )
        env.update(self.extra_env)
        return env

    def _env_through(self, postgres_proxy: Proxy, redis_proxy: Proxy) -> dict[str, str]:
        env = dict(self.env)
        env["DATABASE_URL"] = self.postgres.url(DATABASE_NAME, port=postgres_proxy.port)
        env["REDIS_URL"] = self.redis.url(0, port=redis_proxy.port)
        env["CELERY_BROKER_URL"] = self.redis.url(1, port=redis_proxy.port)
        return env

    def _server_env(self, port: int, postgres_proxy: Proxy, redis_proxy: Proxy) -> dict[str, str]:
        # Advertised as the clients reach it, so a discovered URL is one they know.
        return self._env_through(postgres_proxy, redis_proxy) | {
            "CHAT_SERVER_WS_URL": f"ws://127.0.0.1:{port}/ws/"
        }

    def _migrate(self) -> None:
        env = dict(self.env, DATABASE_URL=self.database_url, REDIS_URL=self.redis_url)
        with (self.workdir / "migrate.log").open("ab") as out:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=300,
            )

    def _start_processes(self) -> None:
        for index, port in enumerate(free_ports(self.server_count)):
            postgres_proxy = self.proxies.add(self.postgres.port)
            redis_proxy = self.proxies.add(self.redis.port)
            self.servers.append(
                ChatServer(
                    index=index,
                    port=port,
                    postgres_proxy=postgres_proxy,
                    redis_proxy=redis_proxy,
                    env=self._server_env(port, postgres_proxy, redis_proxy),
                    log=self.workdir / f"server{index}.log",
                    server=self.server_kind,
                )
            )
        for server in self.servers:
            server.spawn()  # all boot at once; the schema is already there
        for server in self.servers:
            server.wait_ready()
        self.worker_postgres_proxy = self.proxies.add(self.postgres.port)
        self.worker_redis_proxy = self.proxies.add(self.redis.port)
        self.worker = CeleryWorker(
            self._env_through(self.worker_postgres_proxy, self.worker_redis_proxy),
            self.workdir / "worker.log",
            name=f"chaos-{os.getpid()}@%h",
        )
        self.worker.start()

    def stop(self) -> None:
        """Stop everything this cluster started (each step even if an earlier one failed)."""
        if not self._started:
            return
        self._started = False
        steps: list[Callable[[], None]] = [server.stop for server in self.servers]
        for part, method in (
            ("worker", "stop"),
            ("proxies", "close"),
            ("push_receiver", "stop"),
            ("redis", "destroy"),
            ("postgres", "destroy"),
        ):
            if hasattr(self, part):  # absent when starting failed before it
                steps.append(getattr(getattr(self, part), method))
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 (clean up the rest regardless)
                print(f"chaos cluster: {step} failed on stop: {exc!r}", file=sys.stderr)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- restarts the faults use (each announced to the listeners) ----------------------
    def restart_server(self, index: int) -> None:
        server = self.servers[index]
        server.spawn()
        server.wait_ready()
        self.note(f"server {index} restarted (pid {server.pid})")

    def restart_worker(self) -> None:
        self.worker.start()
        self.note("worker restarted")

    def start_redis(self) -> None:
        self.redis.start()
        self.note("redis started")

    def start_postgres(self) -> None:
        self.postgres.start()
        self.note("postgres started")

    # --- health -------------------------------------------------------------------------
    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every server answers HTTP, Redis PINGs, PostgreSQL accepts connections, and the
        worker runs."""
        wait_until(
            lambda: all(server.answers() for server in self.servers),
            "not every chat server answered",
            timeout,
        )
        wait_until(self.redis.pings, "Redis did not answer PING", timeout)
        wait_until(self.postgres.accepts_connections, "PostgreSQL refused", timeout)
        if self.worker.process is None or self.worker.process.poll() is not None:
            raise RuntimeError("the Celery worker is not running")

    def send_probe_task(self) -> str:
        """Queue a task in the broker (direct, past the proxies); returns its id."""
        from celery import Celery

        app = Celery("chaos-probe", set_as_current=False)
        # Celery prefers a CELERY_BROKER_URL in the environment (the caller's own broker)
        # to broker_url; broker_write_url, which sending uses, wins over both.
        app.conf.update(broker_write_url=self.redis.url(1))
        try:
            return str(app.send_task(PROBE_TASK).id)
        finally:
            app.close()

    def wait_task_done(self, task_id: str, timeout: float = 30.0) -> bool:
        """Whether the worker finished that task (its log says so) within ``timeout``."""
        needle = f"[{task_id}] succeeded".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.worker.log.read_bytes():
                return True
            time.sleep(0.1)
        return False

    def worker_consumes(self, timeout: float = 30.0) -> bool:
        """Queue a task through the broker and wait for the worker to finish it."""
        return self.wait_task_done(self.send_probe_task(), timeout)


def _write_vapid_key(data_dir: Path) -> str:
    """Generate the VAPID key every process will load from ``DATA_DIR`` (the product's
    file name) before any starts, and return its public key as browsers are given it."""
    key = ec.generate_private_key(ec.SECP256R1())
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "vapid_private_key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
