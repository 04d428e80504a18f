"""Real server processes (``manage.py serve``) for end-to-end tests with real WebSocket clients.

On the embedded configuration each server gets a fresh SQLite data directory; on the
production configuration a fresh PostgreSQL database and the configured Redis, so several
processes share state the way a deployment does.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from bench.targets import OwnedProcess

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess(OwnedProcess):
    """One ``manage.py serve`` on ``host`` (``wrapper``: a command to run it under, e.g.
    ``ip netns exec NS``). It advertises ``ws://<host>:<port>/ws/`` in the registry
    (serve's default) unless ``env`` sets ``CHAT_SERVER_WS_URL``."""

    stop_grace = 10.0

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *,
        host: str = "127.0.0.1",
        wrapper: Sequence[str] = (),
    ) -> None:
        self.env = env
        self.log = log
        self.host = host
        self.wrapper = list(wrapper)
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.address}/ws/"

    def start(self, *, migrate: bool = True) -> None:
        self.spawn(migrate=migrate)
        self.wait_ready()

    def spawn(self, *, migrate: bool = True) -> None:
        """Start the process; it serves once ``wait_ready`` returns."""
        args = [
            *self.wrapper,
            *(sys.executable, "manage.py", "serve", "--host", self.host, "--port", str(self.port)),
        ]
        if not migrate:
            args.append("--no-migrate")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/api/schema/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")


@contextlib.contextmanager
def fresh_server_env(data_dir: Path) -> Iterator[dict[str, str]]:
    """The servers' environment: this one with ``data_dir`` and, on the production
    configuration, a fresh PostgreSQL database (dropped at the end)."""
    env = dict(os.environ)
    env["DATA_DIR"] = str(data_dir)
    env["SEND_RATE_LIMIT_PER_10S"] = "100000"
    env.pop("DJANGO_SETTINGS_MODULE", None)
    database_url = env.get("DATABASE_URL")
    created_db = None
    if database_url:
        import psycopg

        created_db = f"e2e_{secrets.token_hex(4)}"
        parts = urlsplit(database_url)
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{created_db}"')
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{created_db}"))
        env["SERVER_PROCESSES"] = "2"
    try:
        yield env
    finally:
        if created_db and database_url:
            import psycopg

            parts = urlsplit(database_url)
            admin_url = urlunsplit(parts._replace(path="/postgres"))
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)')


@pytest.fixture
def server_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_server_env(tmp_path / "data") as env:
        yield env


@pytest.fixture
def servers(
    server_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[int], list[ServerProcess]]]:
    started: list[ServerProcess] = []

    def start(count: int) -> list[ServerProcess]:
        for index in range(count):
            server = ServerProcess(server_env, tmp_path / f"server{len(started)}.log")
            server.start(migrate=index == 0)
            started.append(server)
        return started[-count:]

    yield start
    for server in started:
        server.stop()
