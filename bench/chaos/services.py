"""The cluster's private services: a PostgreSQL cluster, a Redis server, a Celery worker.

Each runs from a temporary folder on its own port and is stopped by its own PID (the
postmaster's from its ``postmaster.pid``, the others' from ``Popen``): the machine's
shared PostgreSQL and Redis are never touched. PostgreSQL refuses to run as root, so when
the runner is root its commands run as the ``postgres`` user (``su postgres -c``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

from bench.targets import ROOT, OwnedProcess

PG_BIN = Path(os.environ.get("CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("CHAOS_REDIS_SERVER", "redis-server")
START_TIMEOUT = 60.0


def wait_until(
    condition_met: Callable[[], bool], what: str, timeout: float = START_TIMEOUT
) -> None:
    """Poll ``condition_met()`` until true, else fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while not condition_met():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f}s")
        time.sleep(0.1)


class PostgresServer:
    """``initdb`` into ``directory``; ``pg_ctl`` starts and stops it on ``port``."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = port
        self.log = directory.parent / "postgres.log"

    def url(self, database: str = "postgres", port: int | None = None) -> str:
        return f"postgres://postgres@127.0.0.1:{port or self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["su", "postgres", "-c", shlex.join(command)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603

    def initialise(self) -> None:
        self.directory.mkdir(parents=True)
        self.log.touch()
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            shutil.chown(self.log, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            " -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: roll back open transactions, close sessions, checkpoint, exit."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        """Stop it whatever state it is in (by the postmaster's PID as the last resort)."""
        pid = self.pid
        if pid is not None:
            try:
                self.stop("immediate")
            except (subprocess.SubprocessError, OSError):
                _kill_quietly(pid)


class RedisServer:
    """``redis-server`` on ``port`` without persistence: a restart loses everything."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.log = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: int = 0, port: int | None = None) -> str:
        return f"redis://127.0.0.1:{port or self.port}/{database}"

    def start(self) -> None:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 (fixed arguments)
                args, stdout=out, stderr=subprocess.STDOUT
            )
        wait_until(self.pings, f"redis-server on port {self.port} did not answer PING")

    def pings(self) -> bool:
        client = redis.Redis.from_url(self.url(), socket_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def shutdown_nosave(self) -> None:
        """SHUTDOWN NOSAVE: every connection, subscription and key is gone."""
        client = redis.Redis.from_url(self.url(), socket_timeout=5)
        try:
            client.shutdown(nosave=True)
        except redis.RedisError:
            pass  # the server closes the connection as it exits
        finally:
            client.close()
        if self.process is not None:
            self.process.wait(15)
            self.process = None

    def destroy(self) -> None:
        if self.process is not None:
            _kill_quietly(self.process.pid)
            self.process.wait(10)
            self.process = None


class CeleryWorker(OwnedProcess):
    """``celery -A chatproject worker`` with the cluster's environment. ``kill()``: tasks it
    had taken stay unacknowledged in the broker."""

    stop_grace = 20.0

    def __init__(self, env: dict[str, str], log: Path, name: str) -> None:
        self.env = env
        self.log = log
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.touch()
        offset = self.log.stat().st_size  # a restart appends: look for *its* "ready"
        args = [sys.executable, "-m", "celery", "-A", "chatproject", "worker"]
        args += ["--pool=threads", "--concurrency=8", "--loglevel=INFO", "-n", self.name]
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 (fixed arguments)
                args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_until(lambda: self._ready_since(offset), "the Celery worker was not ready")

    def _ready_since(self, offset: int) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited:\n{self.log_text()[-3000:]}")
        return b" ready." in self.log.read_bytes()[offset:]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def process_state(pid: int) -> str:
    """The kernel's one-letter state of a process: R/S running or sleeping, T stopped (by
    a signal), Z exited and not yet reaped; "" when it does not exist."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
