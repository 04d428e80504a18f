from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.hooks import DevicesRevoked


def close_revoked_devices(event: DevicesRevoked) -> None:
    """Close the revoked devices' live connections, wherever they are."""
    from . import realtime  # not at import time: apps load before the app registry is ready

    realtime.disconnect_devices(user_id=event.user_id, device_ids=event.device_ids)


async def drain_connections() -> None:
    """A drain step: send this process's clients elsewhere and wait until they left."""
    from . import realtime

    await realtime.get_hub().drain()


def suggested_socket_url(request: HttpRequest) -> str:
    """The registry's choice of chat server for a device that just logged in."""
    from .registry.views import suggested_server

    url: str = suggested_server(request)["ws_url"]
    return url


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Accounts publishes revocations instead of calling chat (apps depend in one
        # direction: accounts <- chat); closing the sockets is chat's part.
        from accounts import hooks
        from chatproject import lifecycle

        from . import tasks  # noqa: F401 (registers the periodic tasks by name)

        hooks.subscribe_devices_revoked(close_revoked_devices)
        hooks.provide_socket_url(suggested_socket_url)
        # SIGTERM (manage.py serve): clients are told to reconnect elsewhere, then leave.
        lifecycle.add_drain_step(drain_connections)
