"""System checks that refuse production-only mistakes at start-up (``manage.py check --deploy``
runs them, and so does every server start)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1", "testserver"}


@register()
def check_production_mistakes(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    problems: list[Error | Warning] = []
    public_hosts = [h for h in settings.ALLOWED_HOSTS if h not in _LOCAL_HOSTS]
    if settings.DEBUG and public_hosts:
        problems.append(
            Error(
                "DEBUG is on while ALLOWED_HOSTS names public hosts.",
                hint="Unset DEBUG in production: it leaks settings and source in error pages.",
                id="chatproject.E001",
            )
        )
    if settings.SERVER_PROCESSES > 1 and not settings.REDIS_URL:
        problems.append(
            Error(
                "SERVER_PROCESSES > 1 but no REDIS_URL: the in-memory channel layer and realtime "
                "hub cannot deliver between processes.",
                hint="Set REDIS_URL, or run one server process.",
                id="chatproject.E002",
            )
        )
    problems += _redis_cluster_mistakes()
    insecure = settings.SECRET_KEY.startswith("django-insecure") or len(settings.SECRET_KEY) < 40
    if insecure and public_hosts:
        problems.append(
            Error(
                "SECRET_KEY is insecure (too short or a django-insecure placeholder).",
                hint="Unset SECRET_KEY to use the one kept in DATA_DIR, or set a long one.",
                id="chatproject.E003",
            )
        )
    if settings.SERVER_PROCESSES > 1 and settings.EMBEDDED_DATABASE:
        problems.append(
            Warning(
                "SERVER_PROCESSES > 1 on SQLite: writes serialize on one file.",
                hint="Set DATABASE_URL to PostgreSQL for several processes.",
                id="chatproject.W001",
            )
        )
    return problems


def _redis_cluster_mistakes() -> list[Error | Warning]:
    if not settings.REDIS_CLUSTER:
        return []
    if not settings.REDIS_URL:
        return [
            Error(
                "REDIS_CLUSTER is on but REDIS_URL is empty.",
                hint="Set REDIS_URL to any one node of the cluster, e.g. redis://node-1:6379/0.",
                id="chatproject.E004",
            )
        ]
    problems: list[Error | Warning] = []
    redis_url = urlsplit(settings.REDIS_URL)
    if redis_url.path.strip("/") not in ("", "0"):
        problems.append(
            Error(
                "REDIS_CLUSTER is on but REDIS_URL names a database other than 0.",
                hint="A Redis Cluster has database 0 only: end REDIS_URL with /0 or nothing.",
                id="chatproject.E005",
            )
        )
    broker = urlsplit(settings.CELERY_BROKER_URL)
    if broker.scheme.startswith("redis") and broker.netloc == redis_url.netloc:
        problems.append(
            Error(
                "CELERY_BROKER_URL points at the Redis Cluster of REDIS_URL.",
                hint="Celery's Redis transport does not speak the cluster protocol: give the "
                "broker a standalone Redis (or RabbitMQ).",
                id="chatproject.E006",
            )
        )
    return problems


@register(deploy=True)
def check_deployment_settings(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Settings that are right for tests and wrong for a deployment (``check --deploy``)."""
    problems: list[Warning] = []
    if settings.PUSH_ALLOW_HTTP_ENDPOINTS:
        problems.append(
            Warning(
                "PUSH_ALLOW_HTTP_ENDPOINTS is on: any user can make the server send Web Push "
                "requests to plain http URLs, IP addresses and loopback or private hosts.",
                hint="Unset it: it exists for local test receivers only.",
                id="chatproject.W002",
            )
        )
    return problems
