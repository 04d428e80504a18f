"""The chat server registry (chat/registry/): its contract, checked clause by clause for
every backend, the choice of a server, and ``GET /api/v1/chat-servers/best``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User
from chat.registry import ServerRecord, ServerRegistry, best_server, get_registry
from chat.registry.memory import MemoryRegistry
from chat.registry.redis import RedisRegistry
from chatproject.redis_connections import connections

from .test_send_cost import RedisRoundTrips

NOW = 1_800_000_000.0
TTL = 15.0


def record(
    server_id: str, connections: int = 0, zone: str = "", draining: bool = False
) -> ServerRecord:
    return ServerRecord(
        server_id=server_id,
        ws_url=f"ws://{server_id}.example:8000/ws/",
        zone=zone,
        started_at=NOW - 100,
        connections=connections,
        draining=draining,
    )


def _redis_registry() -> Iterator[ServerRegistry]:
    registry = RedisRegistry(prefix=f"test-registry-{secrets.token_hex(4)}")
    yield registry
    connections.sync_client().delete(registry.records_key, registry.expiry_key, registry.claims_key)


@pytest.fixture(params=["memory", "redis"])
def registry(request: pytest.FixtureRequest) -> Iterator[ServerRegistry]:
    if request.param == "memory":
        yield MemoryRegistry()
        return
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    yield from _redis_registry()


# --- the contract ------------------------------------------------------------------------


def test_a_published_record_is_live_until_its_ttl_runs_out(registry: ServerRegistry) -> None:
    registry.publish(record("b", 3), ttl=TTL, now=NOW)
    registry.publish(record("a", 1), ttl=TTL, now=NOW)
    assert registry.live(now=NOW + TTL - 0.5) == [record("a", 1), record("b", 3)]
    assert registry.live(now=NOW + TTL) == []  # a crashed process is gone within the TTL
    assert registry.live(now=NOW) == []  # and stays gone: its record was dropped


def test_publishing_again_replaces_the_record_and_extends_its_life(
    registry: ServerRegistry,
) -> None:
    registry.publish(record("a", 1), ttl=TTL, now=NOW)
    registry.publish(record("a", 7, draining=True), ttl=TTL, now=NOW + 10)
    assert registry.live(now=NOW + TTL + 5) == [record("a", 7, draining=True)]


def test_a_removed_record_is_gone_at_once_and_unknown_ids_are_ignored(
    registry: ServerRegistry,
) -> None:
    registry.publish(record("a"), ttl=TTL, now=NOW)
    registry.publish(record("b"), ttl=TTL, now=NOW)
    registry.remove("a")
    registry.remove("never-registered")
    assert registry.live(now=NOW) == [record("b")]


def test_an_expired_record_does_not_hide_the_live_ones(registry: ServerRegistry) -> None:
    registry.publish(record("dead"), ttl=TTL, now=NOW - 60)
    registry.publish(record("alive"), ttl=TTL, now=NOW)
    assert registry.live(now=NOW) == [record("alive")]


def test_claims_count_until_the_next_publish_and_unknown_ids_are_ignored(
    registry: ServerRegistry,
) -> None:
    registry.publish(record("a", 2), ttl=TTL, now=NOW)
    registry.claim("a")
    registry.claim("a")
    registry.claim("gone")  # removed between a read and the claim: not resurrected
    (live,) = registry.live(now=NOW)
    assert (live.connections, live.claimed, live.load) == (2, 2, 4)
    assert [r.server_id for r in registry.live(now=NOW)] == ["a"]
    registry.publish(record("a", 4), ttl=TTL, now=NOW + 1)  # the beat counts them now
    assert registry.live(now=NOW + 1)[0].claimed == 0


def test_suggestions_spread_clients_between_heartbeats(registry: ServerRegistry) -> None:
    for name in ("a", "b", "c"):
        registry.publish(record(name, 0), ttl=TTL, now=NOW)
    registry.publish(record("d", 0, draining=True), ttl=TTL, now=NOW)
    chosen = [registry.suggest(zone="", now=NOW) for _ in range(300)]
    counts = {name: sum(1 for r in chosen if r and r.server_id == name) for name in "abcd"}
    assert counts == {"a": 100, "b": 100, "c": 100, "d": 0}


def test_the_redis_registry_reads_in_one_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    for registry in _redis_registry():
        for index in range(20):
            registry.publish(record(f"s{index}"), ttl=TTL, now=NOW)
        registry.live(now=NOW)  # loads the script
        trips = RedisRoundTrips(monkeypatch)
        assert len(registry.live(now=NOW)) == 20
        assert trips.count == 1  # one EVALSHA, whatever the number of servers
        registry.publish(record("s0", 5), ttl=TTL, now=NOW)
        assert trips.count == 2  # a heartbeat: one transaction
        registry.claim("s0")
        assert trips.count == 3  # a claim: one script


# --- the choice --------------------------------------------------------------------------


def test_the_least_loaded_server_that_is_not_draining_is_chosen() -> None:
    servers = [record("a", 5), record("b", 2, draining=True), record("c", 3), record("d", 3)]
    assert best_server(servers) == record("c", 3)  # ties by id: every caller agrees
    assert best_server([record("b", 0, draining=True)]) is None
    assert best_server([]) is None


def test_the_clients_zone_comes_first_while_it_has_a_server() -> None:
    servers = [record("a", 1, zone="eu"), record("b", 9, zone="us"), record("c", 5, zone="us")]
    assert best_server(servers, "us") == record("c", 5, zone="us")
    assert best_server(servers, "ap") == record("a", 1, zone="eu")
    draining_zone = [record("a", 1, zone="eu"), record("b", 0, zone="us", draining=True)]
    assert best_server(draining_zone, "us") == record("a", 1, zone="eu")


# --- the endpoint ------------------------------------------------------------------------


@pytest.fixture
def memory_registry() -> Iterator[ServerRegistry]:
    with override_settings(CHAT_SERVER_REGISTRY_BACKEND="chat.registry.memory.MemoryRegistry"):
        yield get_registry()


@pytest.fixture
def api(login_client: Callable[..., tuple[APIClient, User, str]]) -> APIClient:
    return login_client()[0]


@pytest.mark.django_db
def test_best_names_the_least_loaded_live_server_in_the_clients_zone(
    memory_registry: ServerRegistry, api: APIClient
) -> None:
    now = time.time()
    memory_registry.publish(record("a", 4, zone="eu"), ttl=TTL, now=now)
    memory_registry.publish(record("b", 1, zone="us"), ttl=TTL, now=now)
    memory_registry.publish(record("c", 0, zone="eu", draining=True), ttl=TTL, now=now)
    memory_registry.publish(record("dead", 0, zone="eu"), ttl=TTL, now=now - 60)
    answer = api.get("/api/v1/chat-servers/best")
    assert answer.status_code == 200
    assert answer.json() == {"ws_url": "ws://b.example:8000/ws/", "server_id": "b", "zone": "us"}
    in_eu = api.get("/api/v1/chat-servers/best", headers={"X-Client-Zone": "eu"})
    assert in_eu.json()["server_id"] == "a"


@pytest.mark.django_db
def test_with_no_live_server_best_points_at_the_load_balancer(
    memory_registry: ServerRegistry, api: APIClient
) -> None:
    with override_settings(ALLOWED_HOSTS=["chat.example.com"]):
        answer = api.get("/api/v1/chat-servers/best", HTTP_HOST="chat.example.com")
    assert answer.json() == {"ws_url": "ws://chat.example.com/ws/", "server_id": None, "zone": ""}


@pytest.mark.django_db
def test_best_needs_credentials() -> None:
    assert APIClient().get("/api/v1/chat-servers/best").status_code == 401


@pytest.mark.django_db
def test_log_in_and_sign_up_answers_name_the_server_to_connect_to(
    memory_registry: ServerRegistry,
) -> None:
    now = time.time()
    memory_registry.publish(record("busy", 9), ttl=TTL, now=now)
    memory_registry.publish(record("idle", 0), ttl=TTL, now=now)
    client = APIClient()
    credentials = {"username": "wanda", "password": "a long passphrase 42"}
    signed_up = client.post("/api/v1/auth/signup", credentials, format="json")
    assert signed_up.status_code == 201, signed_up.json()
    assert signed_up.json()["ws_url"] == "ws://idle.example:8000/ws/"
    logged_in = client.post("/api/v1/auth/login", credentials, format="json")
    assert logged_in.status_code == 200, logged_in.json()
    assert logged_in.json()["ws_url"] == "ws://idle.example:8000/ws/"
