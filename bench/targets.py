"""Start and stop what the benchmark measures: the chat server, or a calibration target
(the relay, ``bench/relay.py``; the Django Channels tutorial, ``bench/channels_tutorial.py``).

The chat server runs as ``manage.py serve`` processes with the benchmark's settings
(``bench.server_settings``): on the embedded configuration one process on SQLite in a
temporary ``DATA_DIR``; on the production configuration N processes, each on its own
port, sharing a fresh PostgreSQL database ``bench_<run>`` and Redis database 9. The load
generator spreads its clients over the N ports round-robin (no load balancer: it would be
one more process competing for the same 2 cores).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
# The Channels tutorial's database on the same Redis (its pub/sub layer stores no keys).
TUTORIAL_REDIS_DATABASE = 10
# What every workload runs first, for the chat figures to be reported beside and as ratios.
CALIBRATION_KINDS = frozenset({"relay", "tutorial"})

# Limits the product enforces against abuse, raised so that they are not what is measured.
BENCH_SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.server_settings",
    "THROTTLE_SIGNUP": "1000000/min",
    "THROTTLE_LOGIN": "1000000/min",
    "SEND_RATE_LIMIT_PER_10S": "10000000",
    "LOG_LEVEL": "WARNING",
    "DEBUG": "false",
}


@dataclass
class Target:
    """A running server under test."""

    name: str
    kind: str  # "chat", or one of CALIBRATION_KINDS
    ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    database: str | None = None
    ws_path: str = "/ws/"

    @property
    def calibration(self) -> bool:
        return self.kind in CALIBRATION_KINDS

    @property
    def base_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    @property
    def ws_urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{port}{self.ws_path}" for port in self.ports]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    @property
    def database_url(self) -> str | None:
        return self.env.get("DATABASE_URL")

    def log_tail(self, characters: int = 3000) -> str:
        """The end of each process's log (why a server failed)."""
        return log_tail(self.workdir, characters) if self.workdir is not None else ""

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes.clear()
        if self.database:
            _drop_database(self.database)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def kill_process(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap: no cleanup at all, as when a machine dies."""
    process.kill()
    process.wait(10)


def stop_process(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class OwnedProcess:
    """A child process this process started, and may kill or stop (``process`` is None
    while it is not running)."""

    process: subprocess.Popen[bytes] | None
    stop_grace: float = 15.0

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a machine dies."""
        if self.process is not None:
            kill_process(self.process)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, self.stop_grace)
            self.process = None


def log_tail(workdir: Path, characters: int = 3000) -> str:
    """The end of every ``*.log`` in ``workdir``, each under its name."""
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-characters:]}"
        for log in sorted(workdir.glob("*.log"))
    )


def _admin_url() -> str:
    """The server's maintenance database, from BENCH_DATABASE_URL, else DATABASE_URL's
    server (the test suite's), else the local default."""
    base = (
        os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )
    return urlunsplit(urlsplit(base)._replace(path="/postgres"))


def _redis_url() -> str:
    """BENCH_REDIS_URL, else database 9 of REDIS_URL's server, else the local default."""
    if os.environ.get("BENCH_REDIS_URL"):
        return os.environ["BENCH_REDIS_URL"]
    if os.environ.get("REDIS_URL"):
        return urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path="/9"))
    return DEFAULT_REDIS_URL


def tutorial_redis_url() -> str:
    """Database 10 of the chat server's benchmark Redis (``_redis_url``)."""
    return urlunsplit(urlsplit(_redis_url())._replace(path=f"/{TUTORIAL_REDIS_DATABASE}"))


def redis_reachable(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def free_ports(count: int) -> list[int]:
    """Ports the kernel reports free right now (for tests, where fixed ports may clash)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _database_url(name: str) -> str:
    return urlunsplit(urlsplit(_admin_url())._replace(path=f"/{name}"))


def _create_database(name: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    # Only this run's own database (9 by default): stale routes and id leases of earlier
    # runs would otherwise outlive their processes. Never FLUSHALL on a shared Redis.
    client.flushdb()
    client.close()


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not start:\n{log.read_text()[-3000:]}")


def server_environment(workdir: Path) -> dict[str, str]:
    """This process's environment without the test suite's or deployment's service
    settings, plus the benchmark server's settings and a data directory in ``workdir``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHAT_")}
    for key in (
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "SERVER_PROCESSES",
        "DB_CONN_MAX_AGE",
        "ID_WORKER_ID",
    ):
        env.pop(key, None)
    env.update(BENCH_SERVER_ENV)
    env["DATA_DIR"] = str(workdir / "data")
    env["SECRET_KEY"] = "bench-" + "x" * 60
    return env


def spawn_server(
    *, port: int, server: str, env: dict[str, str], log: Path, migrate: bool
) -> subprocess.Popen[bytes]:
    """One ``manage.py serve`` process (not yet ready: see ``wait_ready``)."""
    args = [sys.executable, "manage.py", "serve", "--port", str(port), "--server", server]
    if not migrate:
        args.append("--no-migrate")
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 (fixed arguments)
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def start_chat(*, config: str, processes: int, server: str, first_port: int, run_id: str) -> Target:
    if config == "embedded" and processes != 1:
        raise ValueError("the embedded configuration is one process (SQLite, in-process hub)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-chat-", dir=os.environ.get("BENCH_TMP")))
    env = server_environment(workdir)
    database = None
    if config == "production":
        database = f"bench_{run_id}_{server}"
        _create_database(database)
        redis_url = _redis_url()
        _flush_redis(redis_url)
        env["DATABASE_URL"] = _database_url(database)
        env["REDIS_URL"] = redis_url
        env["SERVER_PROCESSES"] = str(processes)
    target = Target(
        name=f"chat/{config}/{server}x{processes}",
        kind="chat",
        ports=(
            [first_port + index for index in range(processes)]
            if first_port
            else free_ports(processes)
        ),
        env=env,
        workdir=workdir,
        database=database,
    )
    try:
        for index, port in enumerate(target.ports):
            log = workdir / f"server{index}.log"
            process = spawn_server(port=port, server=server, env=env, log=log, migrate=index == 0)
            target.processes.append(process)
            # The first process migrates; the others start once the schema exists.
            wait_ready(f"http://127.0.0.1:{port}/api/schema/", process, log)
    except BaseException:
        target.stop()
        raise
    return target


def start_relay(*, port: int) -> Target:
    return _start_calibration(
        name="relay", kind="relay", module="bench.relay", port=port, ws_path="/"
    )


def start_channels_tutorial(*, port: int, redis_url: str | None = None) -> Target:
    """The Channels tutorial's chat under uvicorn, on ``redis_url`` (default:
    ``tutorial_redis_url()``). Nothing to flush: its pub/sub layer stores no keys."""
    return _start_calibration(
        name="channels-tutorial",
        kind="tutorial",
        module="bench.channels_tutorial",
        port=port,
        extra_args=["--redis-url", redis_url or tutorial_redis_url()],
    )


def _start_calibration(
    *,
    name: str,
    kind: str,
    module: str,
    port: int,
    extra_args: Sequence[str] = (),
    ws_path: str = "/ws/",
) -> Target:
    """One calibration server (``python -m module --port port ...``), ready to serve."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-", dir=os.environ.get("BENCH_TMP")))
    log = workdir / f"{kind}.log"
    args = [sys.executable, "-m", module, "--port", str(port), *extra_args]
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 (fixed arguments)
            args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    target = Target(
        name=name, kind=kind, ports=[port], processes=[process], workdir=workdir, ws_path=ws_path
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/", process, log)
    except BaseException:
        target.stop()
        raise
    return target
