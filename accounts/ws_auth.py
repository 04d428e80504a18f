"""WebSocket authentication, done once when the socket opens.

Apps pass their device token in the ``Authorization: Bearer <token>`` header, or, where
the WebSocket API cannot set headers, as the ``access_token`` query parameter. Browsers
are authenticated by their session cookie, and then the ``Origin`` header must be the
server's own origin, scheme, host and port (accounts.origins: cross-site WebSocket
hijacking); any ``Origin`` sent is checked so, whatever the credentials. The chat
consumer calls ``authenticate_scope`` when the socket opens and refuses it without a
device.

Not a middleware like Channels' AuthMiddlewareStack: a middleware's frame and its copy of
the scope live as long as the socket (memory per idle connection), and wrapping ``send``
costs ~15% of the per-delivery CPU on the fan-out path; the session is never written from
a socket.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.utils.module_loading import import_string

from chatproject.coalesce import PerLoop
from chatproject.db_threads import in_db_thread

from .authentication import session_device
from .models import Device, User
from .origins import origin_allowed
from .tokens import devices_for_tokens

Scope = dict[str, Any]


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", [])}


class _Handshake(HttpRequest):
    """The WebSocket handshake as the HTTP request it is, so that Django's own code reads
    it as it reads every REST request: its scheme (``SECURE_PROXY_SSL_HEADER`` included),
    its cookies and its session's user."""

    def __init__(self, scope: Scope, headers: dict[bytes, bytes]) -> None:
        super().__init__()
        self._socket_scheme = "https" if scope.get("scheme") == "wss" else "http"
        # The CGI names Django's ASGI handler gives HTTP headers.
        self.META = {
            "HTTP_" + name.decode("latin-1").upper().replace("-", "_"): value.decode("latin-1")
            for name, value in headers.items()
        }
        self.COOKIES = parse_cookie(self.META.get("HTTP_COOKIE", ""))

    def _get_scheme(self) -> str:
        return self._socket_scheme


class _UnsavedSession(dict[str, Any]):
    """A session's data as ``get_user`` may change it, without writing it back.

    After a ``SECRET_KEY`` rotation ``get_user`` accepts a session signed under one of
    ``SECRET_KEY_FALLBACKS`` and rotates its key; a handshake cannot send the browser the
    new cookie, so the stored session is left as it is for the next HTTP request (whose
    answer can) to rotate. A refused session is left for that request to end as well.
    """

    def cycle_key(self) -> None:
        pass

    def flush(self) -> None:
        self.clear()


def _origin_allowed(request: _Handshake, origin: bytes) -> bool:
    scheme = "https" if request.is_secure() else "http"
    return origin_allowed(
        origin.decode("latin-1"), scheme=scheme, host=request.META.get("HTTP_HOST")
    )


def _token_from(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    authorization = headers.get(b"authorization", b"").decode("latin-1").split()
    if len(authorization) == 2 and authorization[0].lower() in ("bearer", "token"):
        return authorization[1]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("access_token")
    return tokens[0] if tokens else None


def _device_for_session(request: _Handshake, session_key: str) -> Device | None:
    """The usable device of the session's user, verified as Django verifies every session
    (the password hash under ``SECRET_KEY`` or one of its fallbacks: a password change
    ends the session, a key rotation does not)."""
    engine = import_string(settings.SESSION_ENGINE)
    request.session = _UnsavedSession(engine.SessionStore(session_key).load())  # type: ignore[assignment]
    user = get_user(request)
    if not user.is_authenticated:
        return None
    return session_device(request, user)


Auth = tuple[User | None, Device | None, str | None]


def _authenticate_session(request: _Handshake, origin: bytes | None) -> Auth:
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if session_key is None:
        return None, None, "not_authenticated"
    if origin is None:
        return None, None, "origin_required"
    device = _device_for_session(request, session_key)
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
    handshake: _Handshake | None = None  # apps send neither Origin nor cookies: none built
    if origin is not None:
        handshake = _Handshake(scope, headers)
        if not _origin_allowed(handshake, origin):
            return None, None, "origin_not_allowed"
    token = _token_from(scope, headers)
    if token is None:
        handshake = handshake or _Handshake(scope, headers)
        return await in_db_thread(_authenticate_session, handshake, origin)
    device = await _device_for_token_coalesced(token)
    if device is None:
        return None, None, "invalid_token"
    return device.user, device, None
