"""Pages of the built-in web app: the app shell, its web manifest and its service worker.

The service worker is served from the site root (``/sw.js``) rather than ``/static/`` so
that its scope covers the whole app; the manifest lives beside it.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import path
from django.views.decorators.http import require_safe

THEME_COLOR = "#1f6feb"


def content_security_policy() -> str:
    """Defence in depth for a page that keeps device tokens in localStorage: only this
    origin's scripts run (no inline script, no eval), nothing is sent anywhere else (but
    to the chat servers' WebSocket origins, ``WEB_SOCKET_ORIGINS``, that discovery may
    name), no framing. Inline styles stay allowed for the per-name avatar colours."""
    connect = " ".join(["'self'", *settings.WEB_SOCKET_ORIGINS])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "manifest-src 'self'",
            "worker-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )


@require_safe
def app(request: HttpRequest) -> HttpResponse:
    """The single page of the app (every screen is drawn by its scripts)."""
    response = render(request, "app.html")
    response["Content-Security-Policy"] = content_security_policy()
    return response


@require_safe
def manifest(request: HttpRequest) -> JsonResponse:
    body = {
        "name": "Chat",
        "short_name": "Chat",
        "description": "Self-hosted chat",
        "id": "/",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME_COLOR,
        "icons": [
            {"src": static("app/icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("app/icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {
                "src": static("app/icons/maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
            {"src": static("app/icons/icon.svg"), "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    return JsonResponse(body, content_type="application/manifest+json")


@cache
def _service_worker_source() -> bytes:
    return (settings.BASE_DIR / "static" / "app" / "sw.js").read_bytes()


@require_safe
def service_worker(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_service_worker_source(), content_type="text/javascript")
    # Browsers re-check the worker on navigation; never let a cache serve a stale one.
    response["Cache-Control"] = "no-cache"
    return response


urlpatterns = [
    path("", app, name="app"),
    path("manifest.webmanifest", manifest, name="web-manifest"),
    path("sw.js", service_worker, name="service-worker"),
]
