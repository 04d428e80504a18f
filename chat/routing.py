"""The WebSocket application: ``/ws/`` is the chat endpoint; any other path is refused.

Not Channels' URLRouter: it copies the scope for every socket (a dict of ~0.5 KiB kept for
the socket's lifetime) to add a ``url_route`` nobody reads, and there is one route.
"""

from __future__ import annotations

from typing import Any

from .connection.consumer import AsgiReceive, ChatConsumer
from .outbox import AsgiSend

CHAT_PATH = "/ws/"


async def websocket_application(
    scope: dict[str, Any], receive: AsgiReceive, send: AsgiSend
) -> None:
    if scope["path"] == CHAT_PATH:
        # Called here rather than through ChatConsumer.as_asgi(): one coroutine frame
        # fewer for the socket's lifetime.
        await ChatConsumer(scope, send).run(receive)
        return
    # Closing before accepting answers the handshake with HTTP 403.
    await receive()  # websocket.connect
    await send({"type": "websocket.close", "code": 1008})
