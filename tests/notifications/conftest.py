"""Fixtures for push tests: the local push services, and on the production configuration
a real Celery worker process.

The worker is a session fixture (not a step in scripts/test) so that ``.venv/bin/pytest``
alone runs these tests end to end: it starts ``celery -A chatproject worker`` with the
test process's environment, pointed at the test database pytest-django created and at
the local push services, purges stale tasks from the broker first, and stops it at the end.
On the embedded configuration there is no broker: tasks run in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import User
from notifications import services as push_service
from notifications import vapid

from .receivers import PushServices, Subscription

ROOT = Path(__file__).resolve().parents[2]
# The worker's retry base: fast tests, and still far below the Retry-After values tested.
WORKER_RETRY_BASE_SECONDS = "0.2"


@pytest.fixture(scope="session")
def push_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushServices]:
    services = PushServices()
    services.start()
    services.write_service_account(tmp_path_factory.mktemp("fcm") / "service-account.json")
    yield services
    services.stop()


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: Any,
    push_services: PushServices,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path | None]:
    """A real worker process on the production configuration; None when embedded."""
    if not settings.CELERY_BROKER_URL:
        yield None
        return
    from chatproject.celery import app

    app.control.purge()  # tasks left by other test runs would act on unrelated rows
    env = dict(os.environ)
    parts = urlsplit(env["DATABASE_URL"])
    env["DATABASE_URL"] = urlunsplit(
        parts._replace(path="/" + settings.DATABASES["default"]["NAME"])
    )
    env["FCM_CREDENTIALS_FILE"] = str(push_services.credentials_file)
    env["FCM_ENDPOINT"] = push_services.origin
    env["PUSH_RETRY_BASE_SECONDS"] = WORKER_RETRY_BASE_SECONDS
    env["PUSH_ALLOW_HTTP_ENDPOINTS"] = "true"
    env["DATA_DIR"] = str(settings.DATA_DIR)  # the same generated VAPID key
    log = tmp_path_factory.mktemp("worker") / "celery.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "chatproject", "worker",
                "--pool=threads", "--concurrency=4", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-n", f"push-tests-{os.getpid()}@%h",
            ],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while " ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"celery worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    yield log
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.push_failed = report.failed  # type: ignore[attr-defined]
    return report


@pytest.fixture(autouse=True)
def push_env(
    request: pytest.FixtureRequest,
    settings: Any,
    push_services: PushServices,
    celery_worker: Path | None,
) -> Iterator[PushServices]:
    settings.FCM_CREDENTIALS_FILE = str(push_services.credentials_file)
    settings.FCM_ENDPOINT = push_services.origin
    settings.PUSH_ALLOW_HTTP_ENDPOINTS = True
    settings.PUSH_RETRY_BASE_SECONDS = float(WORKER_RETRY_BASE_SECONDS)
    settings.SEND_RATE_LIMIT_PER_10S = 10_000
    push_services.reset()
    push_services.vapid_public_key = vapid.public_key()
    yield push_services
    settle()
    failed = getattr(request.node, "push_failed", False) or push_services.rejected
    if celery_worker is not None and failed:
        print(celery_worker.read_text()[-8000:])  # noqa: T201 (shown for a failing test)
    assert not push_services.rejected, push_services.rejected


def settle(seconds: float = 1.5) -> None:
    """Let queued push tasks finish before asserting that something did *not* arrive."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        assert push_service.wait_for_idle(15)
    else:
        time.sleep(seconds)  # a worker process has no cheap "idle" signal


class Phone:
    """A logged-in device with a REST client (the push registration belongs to it)."""

    def __init__(self, user: User, name: str, platform: str) -> None:
        issued = account_services.issue_device_token(user, device_name=name, platform=platform)
        self.user = user
        self.token = issued.token
        self.device_id = issued.device.pk
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.token}")

    def register_webpush(self, subscription: Subscription) -> dict[str, Any]:
        response = self.api.post(
            "/api/v1/push/registrations",
            {"kind": "webpush", "subscription": subscription.as_json()},
            format="json",
        )
        assert response.status_code in (200, 201), response.content
        data: dict[str, Any] = response.json()
        return data

    def register_fcm(self, token: str) -> dict[str, Any]:
        response = self.api.post(
            "/api/v1/push/registrations", {"kind": "fcm", "token": token}, format="json"
        )
        assert response.status_code in (200, 201), response.content
        data: dict[str, Any] = response.json()
        return data

    def direct_with(self, other: User) -> int:
        response = self.api.post(
            "/api/v1/conversations", {"kind": "direct", "user_id": other.pk}, format="json"
        )
        assert response.status_code in (200, 201), response.content
        conversation_id: int = response.json()["id"]
        return conversation_id

    def send(self, conversation_id: int, text: str) -> int:
        response = self.api.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            {"client_msg_id": f"c-{time.monotonic_ns()}", "text": text},
            format="json",
        )
        assert response.status_code == 201, response.content
        message_id: int = response.json()["message"]["id"]
        return message_id


@pytest.fixture
def phone(make_user: Callable[..., User]) -> Callable[..., Phone]:
    def make(user: User | str, name: str = "phone", *, platform: str = "android") -> Phone:
        if isinstance(user, str):
            user = make_user(user, display_name=user.capitalize())
        return Phone(user, name, platform)

    return make
