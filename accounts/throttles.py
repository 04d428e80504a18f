"""Log-in throttling: by client address and by the username tried, so brute force against
one account from many addresses is limited too."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from .usernames import throttle_ident


class _AddressThrottle(SimpleRateThrottle):
    def get_ident(self, request: Request) -> str:
        """The client address. ``X-Forwarded-For`` counts only when the REST_FRAMEWORK
        ``NUM_PROXIES`` setting says how many trusted proxies add to it: DRF trusts it by
        default, which would let a client pick a fresh address for every attempt."""
        if not api_settings.NUM_PROXIES:
            return str(request.META.get("REMOTE_ADDR", ""))
        return super().get_ident(request)


class LoginAddressThrottle(_AddressThrottle):
    scope = "login"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if not isinstance(username, str) or not username:
            return None
        # One count per account whatever case, width or bytes the name is typed in.
        return self.cache_format % {"scope": "login-user", "ident": throttle_ident(username)}


class SignUpThrottle(_AddressThrottle):
    scope = "signup"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
