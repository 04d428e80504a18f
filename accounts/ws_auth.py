"""WebSocket authentication, done once when the socket opens.

Apps pass their device token in the ``Authorization: Bearer <token>`` header, or, where
the WebSocket API cannot set headers, as the ``access_token`` query parameter. Browsers
are authenticated by their session cookie, and then the ``Origin`` header must be the
server's own origin, scheme, host and port (accounts.origins: cross-site WebSocket
hijacking); any ``Origin`` sent is checked so, whatever the credentials. The result
lands in ``scope["user"]`` and ``scope["device"]``; anonymous sockets get ``user=None``
and the consumer refuses them.

Unlike Channels' AuthMiddlewareStack this does not wrap ``send``: wrapping costs ~15% of
the per-delivery CPU on the fan-out path, and the session is never written from a socket.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

from chatproject.coalesce import PerLoop
from chatproject.db_threads import in_db_thread

from .authentication import SESSION_DEVICE_KEY
from .models import Device, User
from .origins import origin_allowed
from .tokens import devices_for_tokens, touch

Scope = dict[str, Any]


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", [])}


def _origin_allowed(scope: Scope, headers: dict[bytes, bytes], origin: bytes) -> bool:
    secure = scope.get("scheme") == "wss"
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header is not None:
        # The same trust as Django's request.is_secure() behind a TLS proxy.
        name, value = proxy_header
        forwarded = headers.get(name.removeprefix("HTTP_").replace("_", "-").lower().encode())
        secure = forwarded is not None and forwarded.decode("latin-1").split(",")[0] == value
    host = headers.get(b"host")
    return origin_allowed(
        origin.decode("latin-1"),
        scheme="https" if secure else "http",
        host=host.decode("latin-1") if host is not None else None,
    )


def _token_from(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    authorization = headers.get(b"authorization", b"").decode("latin-1").split()
    if len(authorization) == 2 and authorization[0].lower() in ("bearer", "token"):
        return authorization[1]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("access_token")
    return tokens[0] if tokens else None


def _device_for_session(session_key: str) -> Device | None:
    engine = import_string(settings.SESSION_ENGINE)
    session: SessionBase = engine.SessionStore(session_key)
    user_id = session.get(SESSION_KEY)
    device_id = session.get(SESSION_DEVICE_KEY)
    if user_id is None or device_id is None or session.get(BACKEND_SESSION_KEY) is None:
        return None
    device = Device.objects.select_related("user").filter(pk=device_id, user_id=user_id).first()
    if device is None or not device.is_usable:
        return None
    # The session hash ties the session to the password: a password change ends it.
    if not constant_time_compare(
        session.get(HASH_SESSION_KEY, ""), device.user.get_session_auth_hash()
    ):
        return None
    touch(device)
    return device


Auth = tuple[User | None, Device | None, str | None]


def _authenticate_session(headers: dict[bytes, bytes], origin: bytes | None) -> Auth:
    cookie = SimpleCookie()
    cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return None, None, "not_authenticated"
    if origin is None:
        return None, None, "origin_required"
    device = _device_for_session(morsel.value)
    if device is None:
        return None, None, "not_authenticated"
    return device.user, device, None


# A reconnect storm resolves its tokens in a few queries instead of one per socket.
_device_for_token_coalesced: PerLoop[str, Device | None] = PerLoop(
    devices_for_tokens, max_batch=500
)


async def authenticate_scope(scope: Scope) -> Auth:
    """Return (user, device, refusal reason)."""
    headers = _headers(scope)
    origin = headers.get(b"origin")
    if origin is not None and not _origin_allowed(scope, headers, origin):
        return None, None, "origin_not_allowed"
    token = _token_from(scope, headers)
    if token is None:
        return await in_db_thread(_authenticate_session, headers, origin)
    device = await _device_for_token_coalesced(token)
    if device is None:
        return None, None, "invalid_token"
    return device.user, device, None


class WebSocketAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        user, device, refusal = await authenticate_scope(scope)
        scope = dict(scope, user=user, device=device, auth_refusal=refusal)
        return await self.inner(scope, receive, send)
