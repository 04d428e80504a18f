from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig

if TYPE_CHECKING:
    from accounts.hooks import DevicesRevoked


def close_revoked_devices(event: DevicesRevoked) -> None:
    """Close the revoked devices' live connections, wherever they are."""
    from . import realtime  # not at import time: apps load before the app registry is ready

    realtime.disconnect_devices(user_id=event.user_id, device_ids=event.device_ids)


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Accounts publishes revocations instead of calling chat (apps depend in one
        # direction: accounts <- chat); closing the sockets is chat's part.
        from accounts import hooks

        hooks.subscribe_devices_revoked(close_revoked_devices)
