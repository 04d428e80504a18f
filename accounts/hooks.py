"""Post-commit hooks: what accounts tells the apps built on it, without importing them.

Accounts sits below ``chat`` in the dependency direction, so it cannot close a revoked
device's live connections itself. It publishes the fact once the transaction that made
it true has committed, and chat subscribes in its ``AppConfig.ready()``:

* :class:`DevicesRevoked`: these devices of one user were revoked (logged out, revoked
  from the device list or the admin, the account deactivated or deleted); their sockets
  must close.

And one thing accounts asks of them:

* :func:`suggested_socket_url`: the WebSocket URL to hand a device that just logged in or
  signed up (chat's server registry provides it, :func:`provide_socket_url`).

Subscribers run in the committing thread, after the commit, and must stay cheap there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DevicesRevoked:
    user_id: int
    device_ids: Sequence[int]


RevokedHandler = Callable[[DevicesRevoked], None]

_revoked_handlers: list[RevokedHandler] = []
_lock = threading.Lock()


def subscribe_devices_revoked(handler: RevokedHandler) -> None:
    """Call ``handler`` after every committed revocation. Subscribing the same handler
    twice (``ready()`` run again) keeps one subscription."""
    with _lock:
        if handler not in _revoked_handlers:
            _revoked_handlers.append(handler)


def publish_devices_revoked_on_commit(*, user_id: int, device_ids: Sequence[int]) -> None:
    """Tell the subscribers once the current transaction commits (at once outside one).
    The ids are bound now: a deletion in the same transaction clears the model's pk."""
    event = DevicesRevoked(user_id=user_id, device_ids=tuple(device_ids))
    transaction.on_commit(lambda: _publish(event))


def _publish(event: DevicesRevoked) -> None:
    # The revocation is committed; a failing subscriber is logged and never reaches the
    # request. Sockets it failed to close are found by the re-checks in accounts.revocation.
    for handler in tuple(_revoked_handlers):
        try:
            handler(event)
        except Exception:
            logger.exception("accounts hook: a DevicesRevoked subscriber failed")


SocketUrlProvider = Callable[[HttpRequest], str]

_socket_url_provider: list[SocketUrlProvider] = []


def provide_socket_url(provider: SocketUrlProvider) -> None:
    """Make ``provider`` the one that names the WebSocket URL for log-in answers."""
    with _lock:
        _socket_url_provider[:] = [provider]


def suggested_socket_url(request: HttpRequest) -> str | None:
    """The WebSocket URL a device that just logged in should use; None without a provider
    (accounts alone serves no WebSocket)."""
    if not _socket_url_provider:
        return None
    return _socket_url_provider[0](request)
