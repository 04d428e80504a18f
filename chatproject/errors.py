"""The error vocabulary shared by every transport.

Services raise :class:`ServiceError`; the REST exception handler turns it into the
documented error body and the WebSocket consumer into an ``error`` frame, so a client
sees the same ``code`` for the same mistake whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class ServiceError(Exception):
    """A request the service refuses. ``code`` is stable and documented in docs/protocol.md.

    A kind of error names its code and status in its class line
    (``class NotFound(ServiceError, code="not_found", status=404)``); one error can still
    override either when raised."""

    code = "invalid"
    status = 400

    def __init_subclass__(cls, *, code: str | None = None, status: int | None = None) -> None:
        super().__init_subclass__()
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        fields: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.fields = dict(fields) if fields else {}


class NotFound(ServiceError, code="not_found", status=404):
    """An unknown id, or one the user has no access to (the two are not told apart)."""


class Forbidden(ServiceError, code="forbidden", status=403):
    """Known, but not the user's to do."""


class Conflict(ServiceError, code="conflict", status=409):
    """Not possible in the current state."""


class RateLimited(ServiceError, code="rate_limited", status=429):
    """Too many requests; ``retry_after`` seconds until the next is accepted."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
