"""Is a browser request from one of our own pages? One answer for REST and WebSocket.

An origin is ours when it is exactly the origin the request was made to (scheme, host and
port, the host being one of ALLOWED_HOSTS) or one of CSRF_TRUSTED_ORIGINS (``*.`` for
subdomains), the rules of Django's CsrfViewMiddleware for the ``Origin`` header. Comparing
only host names would let any other port or scheme of the same host (another program on
``http://localhost:9999``) ride on the session cookie.

The log-in and sign-up endpoints use :class:`NotCrossSite` against login CSRF (a foreign
page logging the browser in to an account the attacker controls); the WebSocket
middleware uses :func:`origin_allowed` against cross-site WebSocket hijacking.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

# What an HTML form can send cross-site without a CORS preflight.
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")


def _allowed_hosts() -> list[str]:
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG:
        allowed += ["localhost", "127.0.0.1", "[::1]"]
    return allowed


def _trusted(origin: str, scheme: str, netloc: str) -> bool:
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if trusted.lower() == origin:
            return True
        parts = urlsplit(trusted.lower())
        # Django's form: "https://*.example.com" matches every subdomain.
        wildcard = parts.scheme == scheme and parts.netloc.startswith("*")
        if wildcard and netloc and is_same_domain(netloc, parts.netloc[1:]):
            return True
    return False


def origin_allowed(origin: str, *, scheme: str, host: str | None) -> bool:
    """``origin`` (an ``Origin`` header, or a Referer's scheme://host[:port]) is ours, for
    a request made over ``scheme`` ("http"/"https") to ``host`` (the Host header)."""
    origin = origin.strip().lower()
    parts = _split(origin)
    if parts is None or origin == "null" or not parts.scheme or not parts.netloc:
        return False
    if host:
        domain, _port = split_domain_port(host.lower())
        if domain and validate_host(domain, _allowed_hosts()) and origin == f"{scheme}://{host}":
            return True
    return _trusted(origin, parts.scheme, parts.netloc)


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:  # an unbalanced IPv6 bracket: no origin of ours
        return None


def _origin_of(url: str) -> str:
    parts = _split(url)
    return f"{parts.scheme}://{parts.netloc}" if parts and parts.scheme and parts.netloc else "null"


class NotCrossSite(BasePermission):
    """Refuses (403) a log-in or sign-up that another site's page could have made.

    A browser names the page's origin in ``Origin`` (or at least ``Referer``); each must be
    ours when sent. A form-encoded request asking for a session with neither header is
    refused too, since nothing vouches for it. Apps send JSON without cookies or
    ``Origin`` and are unaffected (and a cross-site page cannot send JSON without a CORS
    preflight, which this server never grants).
    """

    message = "Cross-site requests cannot log in or sign up."

    def has_permission(self, request: Request, view: Any) -> bool:
        scheme = "https" if request.is_secure() else "http"
        host = request.get_host()
        origin = request.headers.get("Origin")
        if origin is not None:
            return origin_allowed(origin, scheme=scheme, host=host)
        referer = request.headers.get("Referer")
        if referer is not None:
            return origin_allowed(_origin_of(referer), scheme=scheme, host=host)
        content_type = request.content_type.split(";")[0].strip().lower()
        return not (content_type in FORM_CONTENT_TYPES and _asks_for_a_session(request))


def _asks_for_a_session(request: Request) -> bool:
    value = request.data.get("session") if hasattr(request.data, "get") else None
    # The values the serializer's ``session`` field reads as true.
    return value in serializers.BooleanField.TRUE_VALUES
