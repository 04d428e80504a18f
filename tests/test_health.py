"""The health endpoints a load balancer probes (chatproject/health.py): liveness never
depends on a service, readiness says which service is down."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings
from django.test import Client, override_settings

from chatproject import lifecycle


def _closed_port() -> int:
    """A port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.django_db
def test_a_serving_process_is_alive_and_ready() -> None:
    client = Client()
    alive = client.get("/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    assert "no-cache" in alive["Cache-Control"]
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {
            "process": "ok",
            "database": "ok",
            "redis": "ok" if settings.REDIS_URL else "not_configured",
        },
    }


@pytest.mark.django_db
def test_an_unreachable_redis_makes_the_process_not_ready_but_still_alive() -> None:
    client = Client()
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"):
        ready = client.get("/readyz")
        alive = client.get("/healthz")
    assert ready.status_code == 503
    # A cluster client that reaches no node of the cluster says so in its own words.
    refused = "RedisClusterException" if settings.REDIS_CLUSTER else "ConnectionError"
    assert ready.json() == {
        "status": "not_ready",
        "checks": {"process": "ok", "database": "ok", "redis": refused},
    }
    assert alive.status_code == 200
    assert client.get("/readyz").status_code == 200  # settings back: ready again


@pytest.mark.django_db
def test_a_draining_process_is_not_ready_but_still_alive() -> None:
    client = Client()
    lifecycle.mark_draining()  # what SIGTERM does first (manage.py serve)
    try:
        ready = client.get("/readyz")
        alive = client.get("/healthz")
    finally:
        lifecycle.reset_for_tests()
    assert ready.status_code == 503
    assert ready.json()["checks"]["process"] == "draining"
    assert alive.status_code == 200


def test_the_probes_take_only_get() -> None:
    assert Client().post("/readyz").status_code == 405
