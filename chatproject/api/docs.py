"""The API documentation pages (Swagger UI and Redoc), served from our own static files.

They run on the origin whose localStorage holds every logged-in device token, so they load
nothing from elsewhere (the bundles come from drf-spectacular-sidecar through WhiteNoise,
so the pages also work offline) and carry a Content-Security-Policy that lets only this
origin's scripts run. Swagger UI's init script is a separate same-origin request
(``?script``, drf-spectacular's split view), so no inline script needs a hash or nonce.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Both UIs set inline styles from their scripts (Redoc through styled-components).
        "style-src 'self' 'unsafe-inline'",
        # Swagger UI draws its icons as data: SVGs.
        "img-src 'self' data:",
        "font-src 'self'",
        # Redoc runs its search index in a worker made from a blob: URL.
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)


class _StrictPolicy:
    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response


class SwaggerDocsView(_StrictPolicy, SpectacularSwaggerSplitView):
    pass


class RedocDocsView(_StrictPolicy, SpectacularRedocView):
    template_name = "api/redoc.html"
