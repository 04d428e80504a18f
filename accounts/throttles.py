"""Log-in and sign-up throttling.

Log-in throttling stops password guessing without letting anyone lock a user out. Only
failed log-ins count, within ``THROTTLE_LOGIN`` (e.g. 10/min):

* per client address: after that many failures the address is refused, for any account;
* per account, across addresses: after that many failures for one username, the addresses
  that themselves failed on it are refused for it. An address with no recent failure on
  that account still gets its attempt, so the owner logs in from their own address while an
  attack runs from others, and each attacking address gets one guess per window.

The client address is ``REMOTE_ADDR``, or, with ``NUM_PROXIES`` trusted proxies in front
(REST_FRAMEWORK setting, from the environment), the address the outermost of them saw
(DRF's ``get_ident``). Counters live in the Django cache (Redis in production, so every
process shares them).
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from .usernames import throttle_ident


def _account_ident(request: Request) -> str | None:
    username = request.data.get("username") if hasattr(request.data, "get") else None
    if not isinstance(username, str) or not username.strip():
        return None
    # The spellings that log in to the same account count against it together; hashed, so
    # that no byte a client sends (a lone surrogate, a NUL) reaches the cache key.
    return throttle_ident(username.strip())


class LoginThrottle(SimpleRateThrottle):
    """Refuses a log-in attempt as described above. An allowed attempt is counted at once
    as a failure, so a burst of parallel guesses is counted before the (slow) password
    checks end; the view hands the slot back with :meth:`forgive` when it was no guess."""

    scope = "login"
    num_requests: int  # set by SimpleRateThrottle from the rate
    duration: int
    address_key: str | None = None
    account_key: str | None = None
    pair_key: str | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        self.now = self.timer()
        address = self.get_ident(request)
        account = _account_ident(request)
        self.address_key = self._key("login", address)
        self.account_key = self._key("login-user", account) if account else None
        self.pair_key = self._key("login-user-address", f"{account}|{address}") if account else None
        self.address_history = self._history(self.address_key)
        self.account_history = self._history(self.account_key)
        self.pair_history = self._history(self.pair_key)
        self.address_locked = len(self.address_history) >= self.num_requests
        self.account_locked = len(self.account_history) >= self.num_requests and bool(
            self.pair_history
        )
        if self.address_locked or self.account_locked:
            return False
        for key, history in (
            (self.address_key, self.address_history),
            (self.account_key, self.account_history),
            (self.pair_key, self.pair_history),
        ):
            if key is not None:
                history.insert(0, self.now)
                # At most a window's worth: a history is never needed beyond the limit.
                self.cache.set(key, history[: self.num_requests], self.duration)
        return True

    def forgive(self) -> None:
        """Give back the slot this attempt took (it logged in, or was not a guess)."""
        for key in (self.address_key, self.account_key, self.pair_key):
            if key is None:
                continue
            history = self._history(key)
            if self.now in history:
                history.remove(self.now)
                self.cache.set(key, history, self.duration)

    def wait(self) -> float | None:
        waits = []
        if self.address_locked:
            waits.append(self._until_expired(self.address_history[self.num_requests - 1]))
        if self.account_locked:
            # Allowed again once this address's own failures expire, or once the account
            # is back under the limit, whichever comes first.
            waits.append(
                min(
                    self._until_expired(self.pair_history[0]),
                    self._until_expired(self.account_history[self.num_requests - 1]),
                )
            )
        return max(waits, default=None)

    def _key(self, scope: str, ident: str) -> str:
        return self.cache_format % {"scope": scope, "ident": ident}

    def _history(self, key: str | None) -> list[float]:
        if key is None:
            return []
        history: list[float] = list(self.cache.get(key, []))
        while history and history[-1] <= self.now - self.duration:
            history.pop()
        return history

    def _until_expired(self, timestamp: float) -> float:
        return max(0.0, timestamp + self.duration - self.now)


class SignUpThrottle(SimpleRateThrottle):
    """Sign-ups per client address."""

    scope = "signup"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
