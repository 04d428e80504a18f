"""Group commit for messages sent over this process's WebSockets.

Every send costs a database transaction (a handful of statements and a commit) and a Redis
round trip; done one by one from each socket, those round trips, not the CPU, bound the
rate. Sends from all sockets of the process are coalesced (``chatproject.coalesce``): what
accumulates while one batch is in the database goes to ``send_messages`` as the next
batch, in one transaction and one publish round trip. One batch is in flight at a time,
so sends are stored in the order they arrived: a device's messages keep their order in
sequence numbers as well as in ids.
"""

from __future__ import annotations

from django.conf import settings

from chat.services.messages import SendRequest, SendResult, send_messages
from chatproject.coalesce import PerLoop

send_coalesced: PerLoop[SendRequest, SendResult] = PerLoop(
    send_messages, max_batch=lambda: settings.SEND_BATCH_MAX
)
