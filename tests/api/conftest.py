"""A live ``manage.py serve`` for the tests that use the API as an outside client would
(schemathesis, the generated client, the docs pages' static files), on whatever
configuration the suite runs: embedded (a fresh SQLite data directory) or production (a
fresh PostgreSQL database and the configured Redis)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.e2e.conftest import ServerProcess

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("live")
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["DATA_DIR"] = str(tmp / "data")
    # The fuzzers sign up and log in far more often than a person: keep the throttles out of
    # their way so they reach the views (throttling has tests of its own).
    env["THROTTLE_SIGNUP"] = "100000/min"
    env["THROTTLE_LOGIN"] = "100000/min"
    env["SEND_RATE_LIMIT_PER_10S"] = "100000"
    database_url = env.get("DATABASE_URL")
    created_db = None
    if database_url:
        import psycopg

        created_db = f"api_{secrets.token_hex(4)}"
        admin_url = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{created_db}"')
        env["DATABASE_URL"] = urlunsplit(urlsplit(database_url)._replace(path=f"/{created_db}"))
    server = ServerProcess(env, Path(tmp / "server.log"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if created_db and database_url:
            import psycopg

            admin_url = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)')


def sign_up(server: ServerProcess, username: str) -> str:
    """A real account on the live server; returns its device token."""
    response = httpx.post(
        server.base_url + "/api/v1/auth/signup",
        json={"username": username, "password": PASSWORD, "device_name": "tests/api"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token
