"""Whether devices may still be used, for connections that outlive their authentication.

A WebSocket is authenticated once, at connect. Revoking a device in the serving process (or
through Redis, on the production configuration) closes its sockets at once
(``chat.realtime.disconnect_devices``); a revocation or deactivation that reached only the
database (another process on the embedded configuration, a ``manage.py shell`` edit, a bulk
update) is found by the checks here: each server process re-checks its sockets' devices on
every presence tick, and the send batcher refuses sends from devices no longer usable.
"""

from __future__ import annotations

from collections.abc import Collection

from chatproject.errors import ServiceError

from .models import Device

# Ids per query: far below SQLite's bound parameter limit, and one query for most processes.
IDS_PER_QUERY = 5_000


class DeviceRevoked(ServiceError):
    """The device was logged out or revoked, or its user deactivated, while connected."""

    code = "revoked"
    status = 401


def revoked_device_ids(device_ids: Collection[int]) -> set[int]:
    """Of ``device_ids``, those that may no longer be used: revoked, deleted, or belonging
    to a deactivated user. One query per IDS_PER_QUERY ids."""
    wanted = sorted(set(device_ids))
    usable: set[int] = set()
    for start in range(0, len(wanted), IDS_PER_QUERY):
        usable.update(
            Device.objects.filter(
                pk__in=wanted[start : start + IDS_PER_QUERY],
                revoked_at__isnull=True,
                user__is_active=True,
            ).values_list("pk", flat=True)
        )
    return set(wanted) - usable
