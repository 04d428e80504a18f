"""Shared fixtures. The suite runs on whatever configuration the environment selects:
embedded (nothing set) or production (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL); see
scripts/test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import User

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The suite creates hundreds of users; production hashing would dominate its run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_shared_state() -> None:
    """Throttle counters, rate limits and realtime routes must not leak between tests."""
    cache.clear()
    from chat import ratelimit

    ratelimit._local_counts.clear()
    if settings.REDIS_URL:
        from chatproject.redis_connections import connections

        client = connections.new_sync_client()
        client.flushdb()  # on a cluster: every master
        client.close()


@pytest.fixture(autouse=True)
def _responses_match_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every /api/v1/ response the suite receives (test clients, and httpx from live servers)
    must be what /api/schema/ describes (issue 11, item 15): the schema is checked by the
    whole suite, not by a sample."""
    from django.test import Client

    from tests.api.schema_check import check_response

    send = Client.request

    def request_and_check(self: Client, **request: Any) -> Any:
        response = send(self, **request)
        wsgi_request = getattr(response, "wsgi_request", None)
        if wsgi_request is not None and wsgi_request.path.startswith("/api/v1/"):
            check_response(wsgi_request, response)
        return response

    monkeypatch.setattr(Client, "request", request_and_check)

    # Responses from live servers (tests/e2e, tests/api, ...) through httpx.
    import httpx

    from tests.api.schema_check import check_httpx_response

    send_sync = httpx.Client.send
    send_async = httpx.AsyncClient.send

    def send_and_check(self: httpx.Client, request: httpx.Request, **options: Any) -> Any:
        response = send_sync(self, request, **options)
        check_httpx_response(response)
        return response

    async def send_and_check_async(
        self: httpx.AsyncClient, request: httpx.Request, **options: Any
    ) -> Any:
        response = await send_async(self, request, **options)
        check_httpx_response(response)
        return response

    monkeypatch.setattr(httpx.Client, "send", send_and_check)
    monkeypatch.setattr(httpx.AsyncClient, "send", send_and_check_async)


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    counter = iter(range(1, 1_000_000))

    def make(username: str | None = None, *, display_name: str = "") -> User:
        return account_services.sign_up(
            username=username or f"user{next(counter)}",
            password=PASSWORD,
            display_name=display_name,
        )

    return make


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def login_client(make_user: Callable[..., User]) -> Callable[..., tuple[APIClient, User, str]]:
    """Returns (client authenticated with a fresh device token, user, token)."""

    def make(
        user: User | None = None, *, device_name: str = "test device"
    ) -> tuple[APIClient, User, str]:
        user = user or make_user()
        issued = account_services.issue_device_token(
            user, device_name=device_name, platform="android"
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")
        return client, user, issued.token

    return make
