"""Health endpoints for load balancers and orchestrators.

* ``GET /healthz`` (liveness): 200 while the process answers HTTP at all. It touches no
  database and no Redis, so a database outage never gets every process restarted.
* ``GET /readyz`` (readiness): 200 when this process can serve a client: every configured
  database answers ``SELECT 1``, with ``REDIS_URL`` Redis answers ``PING`` (on a Redis
  Cluster: every master, since every master holds a share of the routes), and the process
  is not draining (chatproject/lifecycle.py: it got SIGTERM and is sending its clients
  elsewhere); else 503.
  The body names each check's outcome (``ok``, ``not_configured`` or the error's class),
  so an operator reading a probe's answer sees what is down without the server's logs.

A check against a silently partitioned service can take as long as its socket timeouts
(``REDIS_SOCKET_TIMEOUT``; PostgreSQL's TCP timeouts): the prober's own timeout is the
verdict then, as with any load balancer health check.
"""

from __future__ import annotations

from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chatproject import lifecycle
from chatproject.redis_connections import connections as redis_connections

OK = "ok"
NOT_CONFIGURED = "not_configured"


def _database(alias: str) -> str:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 (any failure means not ready; its name is the answer)
        connections[alias].close()  # a broken connection is not reused by the next probe
        return type(exc).__name__
    return OK


def _redis() -> str:
    if not redis_connections.url:
        return NOT_CONFIGURED
    try:
        client = redis_connections.sync_client()
        if redis_connections.cluster:
            from redis.cluster import RedisCluster

            client.ping(target_nodes=RedisCluster.PRIMARIES)
        else:
            client.ping()
    except Exception as exc:  # noqa: BLE001 (as above)
        return type(exc).__name__
    return OK


def readiness_checks() -> dict[str, str]:
    """Check name -> outcome: ``process`` (``draining`` once it got SIGTERM), ``database``
    (``database:<alias>`` for any alias beyond ``default``) and ``redis``."""
    checks = {"process": "draining" if lifecycle.is_draining() else OK}
    checks |= {
        "database" if alias == "default" else f"database:{alias}": _database(alias)
        for alias in connections
    }
    checks["redis"] = _redis()
    return checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness_checks()
    ready = all(outcome in (OK, NOT_CONFIGURED) for outcome in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )
