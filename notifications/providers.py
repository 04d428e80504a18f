"""The two push services, behind one shape: send a batch, get one outcome per item.

* FCM (Android/iOS apps) through firebase-admin's HTTP v1 client, one ``send_each`` call
  per batch of up to 100. Its own HTTP retries are switched off: a 503 or 429 comes back
  to the Celery task, which retries later with a countdown instead of sleeping in a worker.
* Web Push (browsers) through pywebpush: the payload encrypted for the subscription
  (RFC 8291, aes128gcm) and signed with the server's VAPID key (RFC 8292). Web Push has
  no batch API; a batch shares one HTTP session, which connects only to endpoints that
  notifications.endpoints allows, at the address it checked.
"""

from __future__ import annotations

import email.utils
import enum
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import requests
import urllib3.exceptions
from django.conf import settings

from . import endpoints, vapid
from .models import PushKind, PushRegistration
from .payloads import fcm_data

logger = logging.getLogger(__name__)

# send_each accepts 500, but firebase-admin's synchronous send_each runs one thread per
# message; 100 keeps a worker's thread count bounded and still saves 99 tasks in 100.
FCM_BATCH_SIZE = 100
WEBPUSH_BATCH_SIZE = 100
HTTP_TIMEOUT_SECONDS = 10
# FCM error codes after which the token will never work again.
FCM_DEAD_TOKEN_ERRORS = ("UnregisteredError", "SenderIdMismatchError")
FCM_RETRYABLE_CODES = {"UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}


class Outcome(enum.Enum):
    SENT = "sent"
    GONE = "gone"  # the address is dead: remove the registration
    RETRY = "retry"  # 429, 5xx or a network failure: try again later
    # No connection at all (DNS, refused, connect timeout, TLS handshake or certificate):
    # retried once (our own network may have blipped), then dropped. A host that is not a
    # push service never answers, and retrying it PUSH_MAX_ATTEMPTS times only knocks on
    # its door for hours.
    UNREACHABLE = "unreachable"
    FAILED = "failed"  # refused for good (bad payload, misconfiguration): log, drop


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    retry_after: float | None = None  # seconds, from the push service's Retry-After
    detail: str = ""


def batch_size(kind: str) -> int:
    return FCM_BATCH_SIZE if kind == PushKind.FCM else WEBPUSH_BATCH_SIZE


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def send(kind: str, targets: Sequence[tuple[PushRegistration, dict[str, Any]]]) -> list[Result]:
    if kind == PushKind.FCM:
        return _send_fcm(targets)
    return _send_webpush(targets)


# --- Web Push ---------------------------------------------------------------------------------
def _send_webpush(targets: Sequence[tuple[PushRegistration, dict[str, Any]]]) -> list[Result]:
    from pywebpush import WebPushException, webpush

    key = vapid.server_key()
    results: list[Result] = []
    with endpoints.session() as session:
        for registration, payload in targets:
            subscription = {
                "endpoint": registration.address,
                "keys": {"p256dh": registration.p256dh, "auth": registration.auth},
            }
            headers = {
                # Replaces an undelivered earlier push of the same conversation (RFC 8030 5.4).
                "Topic": payload["tag"],
                "Urgency": "high" if payload["type"] == "message" else "normal",
            }
            try:
                webpush(
                    subscription,
                    data=orjson.dumps(payload).decode(),
                    vapid_private_key=key,
                    # A fresh dict each time: webpush() writes the audience into it.
                    vapid_claims={"sub": settings.VAPID_SUBJECT},
                    ttl=settings.PUSH_TTL_SECONDS,
                    headers=headers,
                    timeout=HTTP_TIMEOUT_SECONDS,
                    requests_session=session,
                )
            except WebPushException as exc:
                results.append(_webpush_failure(exc))
            except endpoints.UnsafeEndpoint as exc:
                # Its DNS moved to a private address, or the policy changed: never usable.
                logger.warning(
                    "push: endpoint of registration %s refused: %s", registration.pk, exc
                )
                results.append(Result(Outcome.GONE, detail=f"unsafe endpoint: {exc}"))
            except requests.RequestException as exc:
                outcome = Outcome.UNREACHABLE if _never_connected(exc) else Outcome.RETRY
                results.append(Result(outcome, detail=f"network: {exc}"))
            else:
                results.append(Result(Outcome.SENT))
    return results


def _never_connected(exc: requests.RequestException) -> bool:
    """True when no TLS session with the endpoint was established (as opposed to a push
    service that accepted the connection and then failed or was slow)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, endpoints.UnresolvableEndpoint):
        return True
    # requests wraps urllib3's MaxRetryError, whose reason says what failed.
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.SSLError)


def _webpush_failure(exc: Any) -> Result:
    status: int | None = exc.status_code
    detail = f"HTTP {status}"
    if status in (404, 410):  # RFC 8030 7.3: the subscription expired or was removed
        return Result(Outcome.GONE, detail=detail)
    if status is None or status == 429 or status >= 500:
        return Result(Outcome.RETRY, retry_after=parse_retry_after(exc.retry_after), detail=detail)
    return Result(Outcome.FAILED, detail=f"{detail}: {str(exc)[:300]}")


# --- FCM --------------------------------------------------------------------------------------
_fcm_lock = threading.Lock()
_fcm_app: Any = None


def _fcm() -> Any:
    """The firebase-admin app of this process, or None when FCM is not configured."""
    global _fcm_app  # noqa: PLW0603 (one authenticated client per process, made on first use)
    if not settings.FCM_CREDENTIALS_FILE:
        return None
    with _fcm_lock:
        if _fcm_app is None:
            import firebase_admin
            from firebase_admin import credentials, messaging
            from requests.adapters import HTTPAdapter

            app = firebase_admin.initialize_app(
                credentials.Certificate(settings.FCM_CREDENTIALS_FILE),
                options={"httpTimeout": HTTP_TIMEOUT_SECONDS},
                name=f"chat-push-{id(_fcm_lock)}",
            )
            # firebase-admin has no endpoint option; the URL and the session are private
            # attributes of its messaging service (pinned version, covered by the tests).
            service = messaging._get_messaging_service(app)
            base = settings.FCM_ENDPOINT.rstrip("/")
            service._fcm_url = f"{base}/v1/projects/{app.project_id}/messages:send"
            # No HTTP-level retries of 5xx (one connect retry stays): the task retries later.
            service._client.session.mount(base, HTTPAdapter(max_retries=1))
            _fcm_app = app
    return _fcm_app


def _fcm_message(token: str, payload: dict[str, Any]) -> Any:
    from firebase_admin import messaging

    tag = payload["tag"]
    badge = int(payload["badge"])
    data = fcm_data(payload)
    if payload["type"] == "message":
        return messaging.Message(
            token=token,
            data=data,
            notification=messaging.Notification(title=payload["title"], body=payload["body"]),
            android=messaging.AndroidConfig(
                collapse_key=tag,
                priority="high",
                ttl=settings.PUSH_TTL_SECONDS,
                notification=messaging.AndroidNotification(tag=tag, notification_count=badge),
            ),
            apns=messaging.APNSConfig(
                headers={"apns-collapse-id": tag, "apns-priority": "10"},
                payload=messaging.APNSPayload(
                    aps=messaging.Aps(badge=badge, thread_id=tag, sound="default")
                ),
            ),
        )
    # A silent update: no notification; the app removes the conversation's notification and
    # sets the badge. Same collapse key, so it replaces a message push still waiting in FCM.
    return messaging.Message(
        token=token,
        data=data,
        android=messaging.AndroidConfig(
            collapse_key=tag, priority="normal", ttl=settings.PUSH_TTL_SECONDS
        ),
        apns=messaging.APNSConfig(
            headers={"apns-push-type": "background", "apns-priority": "5"},
            payload=messaging.APNSPayload(aps=messaging.Aps(badge=badge, content_available=True)),
        ),
    )


def _send_fcm(targets: Sequence[tuple[PushRegistration, dict[str, Any]]]) -> list[Result]:
    from firebase_admin import messaging

    app = _fcm()
    if app is None:
        logger.warning("push: FCM_CREDENTIALS_FILE is not set; %d FCM pushes dropped", len(targets))
        return [Result(Outcome.FAILED, detail="FCM not configured")] * len(targets)
    from firebase_admin.exceptions import FirebaseError

    try:
        batch = messaging.send_each(
            [_fcm_message(registration.address, payload) for registration, payload in targets],
            app=app,
        )
    except FirebaseError as exc:
        # The batch as a whole failed (e.g. the OAuth token could not be fetched): nothing
        # was sent, so all of it is retried.
        logger.warning("push: FCM batch failed: %s", exc)
        return [Result(Outcome.RETRY, detail=str(exc)[:300])] * len(targets)
    return [_fcm_result(response) for response in batch.responses]


def _fcm_result(response: Any) -> Result:
    if response.success:
        return Result(Outcome.SENT)
    exc = response.exception
    detail = f"{type(exc).__name__} {getattr(exc, 'code', '')}: {str(exc)[:300]}"
    if type(exc).__name__ in FCM_DEAD_TOKEN_ERRORS:
        return Result(Outcome.GONE, detail=detail)
    http = getattr(exc, "http_response", None)
    status = getattr(http, "status_code", None)
    if getattr(exc, "code", None) in FCM_RETRYABLE_CODES or status == 429 or (status or 0) >= 500:
        # "is not None": a requests Response with an error status is falsy.
        headers = http.headers if http is not None else {}
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return Result(Outcome.RETRY, retry_after=retry_after, detail=detail)
    if http is None and getattr(exc, "code", None) == "UNKNOWN":  # no response: network
        return Result(Outcome.RETRY, detail=detail)
    return Result(Outcome.FAILED, detail=detail)
