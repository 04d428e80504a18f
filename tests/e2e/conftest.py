"""Real server processes (``manage.py serve``) for end-to-end tests with real WebSocket clients.

On the embedded configuration each server gets a fresh SQLite data directory; on the
production configuration a fresh PostgreSQL database and the configured Redis, so several
processes share state the way a deployment does.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
    stop_grace = 10.0

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def start(self, *, migrate: bool = True) -> None:
        args = [sys.executable, "manage.py", "serve", "--port", str(self.port)]
        if not migrate:
            args.append("--no-migrate")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
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


@pytest.fixture
def server_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env["DATA_DIR"] = str(tmp_path / "data")
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
    yield env
    if created_db and database_url:
        import psycopg

        parts = urlsplit(database_url)
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)')


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
