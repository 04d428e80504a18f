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

from chatproject import sql
from chatproject.errors import ServiceError

from .models import Device, User

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
    devices, users = Device._meta.db_table, User._meta.db_table
    for start in range(0, len(wanted), IDS_PER_QUERY):
        # Every send batch and presence tick reads this: plain SQL, not an ORM query
        # compiled per call.
        condition, params = sql.id_in("d.id", wanted[start : start + IDS_PER_QUERY])
        usable.update(
            device_id
            for (device_id,) in sql.rows(
                f"SELECT d.id FROM {devices} d JOIN {users} u ON u.id = d.user_id "  # noqa: S608 (constant fragments)
                f"WHERE {condition} AND d.revoked_at IS NULL AND u.is_active",
                params,
            )
        )
    return set(wanted) - usable
