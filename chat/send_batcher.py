"""Group commit for messages sent over this process's WebSockets.

Every send costs a database transaction (a handful of statements and a commit) and a Redis
round trip; done one by one from each socket, those round trips, not the CPU, bound the
rate. Sends from all sockets of the process are coalesced (``chatproject.coalesce``): what
accumulates while one batch is in the database goes to ``send_messages`` as the next
batch, in one transaction and one publish round trip. One batch is in flight at a time,
so sends are stored in the order they arrived: a device's messages keep their order in
sequence numbers as well as in ids.

A socket authenticated once, hours ago: each batch first checks, in one query, that its
sending devices are still usable, so a device revoked or a user deactivated by another
process cannot send another message.
"""

from __future__ import annotations

from django.conf import settings

from accounts.revocation import DeviceRevoked, revoked_device_ids
from chat.services.messages import SendRequest, SendResult, send_messages
from chatproject.coalesce import PerLoop
from chatproject.errors import ServiceError


def send_from_usable_devices(requests: list[SendRequest]) -> list[SendResult | ServiceError]:
    revoked = revoked_device_ids([r.device_id for r in requests if r.device_id is not None])
    if not revoked:
        return send_messages(requests)
    allowed = [r for r in requests if r.device_id not in revoked]
    sent = iter(send_messages(allowed) if allowed else [])
    return [
        DeviceRevoked("This device was logged out.") if r.device_id in revoked else next(sent)
        for r in requests
    ]


send_coalesced: PerLoop[SendRequest, SendResult] = PerLoop(
    send_from_usable_devices, max_batch=lambda: settings.SEND_BATCH_MAX
)
