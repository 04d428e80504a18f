"""REST authentication: per-device tokens for apps, the session for the browser.

Apps send ``Authorization: Bearer <token>`` (``Token <token>`` also works). A browser
session is bound to the device created at its log-in, so revoking that device from
another device ends the session too.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth import logout
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import Device, User
from .tokens import device_for_token, touch

SESSION_DEVICE_KEY = "device_id"


class DeviceTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[User, Device] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        device = device_for_token(header[1].decode(errors="replace"))
        if device is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return device.user, device

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class DeviceSessionAuthentication(authentication.SessionAuthentication):
    """Session auth that also requires the session's device to be unrevoked."""

    def authenticate(self, request: Request) -> tuple[User, Device | None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        if request._request.session.get(SESSION_DEVICE_KEY) is None:
            # A session not started by the API log-in (e.g. the admin's): not an API
            # client, but leave that session alone.
            return None
        device = session_device(request._request, user)
        if device is None:
            logout(request._request)
            raise exceptions.AuthenticationFailed(
                "This session's device was revoked. Log in again."
            )
        return user, device


def session_device(request: HttpRequest, user: Any) -> Device | None:
    """The usable device this session was logged in as; using it keeps it from expiring."""
    device_id = request.session.get(SESSION_DEVICE_KEY)
    if device_id is None:
        return None
    device = Device.objects.filter(pk=device_id, user_id=user.pk).select_related("user").first()
    if device is None or not device.is_usable:
        return None
    touch(device)
    return device


def request_user(request: Request) -> User:
    """The authenticated user of a request behind IsAuthenticated (never anonymous there)."""
    return cast(User, request.user)


def request_device(request: Request) -> Device | None:
    auth = request.auth
    return auth if isinstance(auth, Device) else None


class DeviceTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.authentication.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Device token from /api/v1/auth/login.",
        }


class DeviceSessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.authentication.DeviceSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
