"""URL routing: the web app, the REST API under /api/v1/, its schema and docs, the admin, and
the health endpoints for load balancers (chatproject/health.py)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from chatproject import health
from chatproject.api.docs import RedocDocsView, SwaggerDocsView

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("chat.urls")),
    path("api/v1/", include("notifications.urls")),
    path("api/v1/", include("presence.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", RedocDocsView.as_view(url_name="schema"), name="api-redoc"),
    path("", include("chatproject.web_urls")),
]

# Errors raised outside the API views (no URL matched, e.g. an id out of 64-bit range, or an
# unexpected exception) answer with the API's JSON error body under /api/, as pages elsewhere.
handler400 = "chatproject.api.errors.bad_request"
handler403 = "chatproject.api.errors.permission_denied"
handler404 = "chatproject.api.errors.page_not_found"
handler500 = "chatproject.api.errors.server_error"
