"""The chat WebSocket endpoint: a plain ASGI application, one instance per socket.

It authenticates the socket (accounts.ws_auth) and accepts it, refuses it when that
found no device, or says ``hello`` and hands the socket's frames to the device's connection
(chat.connection.device), in order: frames sent before ``hello`` are answered after it.

It deliberately is not a Channels consumer: events come from the process hub
(chat.realtime.hub), not a channel layer, and frames are handled without Channels'
per-message hop to a worker thread (database work happens only in the service calls that
need it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from accounts.ws_auth import authenticate_scope
from chat import frames, protocol
from chat.outbox import AsgiSend, Outbox
from chat.services import sync as sync_service
from chatproject.coalesce import PerLoop

from .device import DeviceConnection

AsgiReceive = Callable[[], Awaitable[dict[str, Any]]]

# A reconnect storm reads its hello states in two queries per batch, not two per socket.
_hello_state_coalesced: PerLoop[tuple[int, int], tuple[int, int]] = PerLoop(
    sync_service.hello_states, max_batch=500
)


class ChatConsumer:
    __slots__ = (
        "_outbox",
        "_send",
        "connection",
        "scope",
    )

    def __init__(self, scope: dict[str, Any], send: AsgiSend) -> None:
        self.scope = scope
        self._send = send
        # Frames are queued, never awaited: a slow reader delays no one (chat.outbox).
        self._outbox = Outbox(send)
        self.connection: DeviceConnection | None = None

    async def run(self, receive: AsgiReceive) -> None:
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if self.connection is not None:
                        raw = message.get("text") or message.get("bytes") or b""
                        await self.connection.on_frame(raw)
                elif kind == "websocket.connect":
                    await self._on_connect()
                elif kind == "websocket.disconnect":
                    break
        finally:
            if self.connection is not None:
                await self.connection.disconnected()
            else:
                self._outbox.stop()

    async def _on_connect(self) -> None:
        # Here, not in a middleware: a middleware's frame and its scope copy would live as
        # long as the socket (~0.7 KiB each idle one), and so would the user and device
        # unless dropped; a socket needs only their ids, and this frame returns.
        user, device, refusal = await authenticate_scope(self.scope)
        await self._send({"type": "websocket.accept"})
        if user is None or device is None:
            self._refuse(refusal or "not_authenticated")
            return
        last_seq, delivered = await _hello_state_coalesced((user.pk, device.pk))
        connection = DeviceConnection(
            user_id=user.pk,
            device_id=device.pk,
            outbox=self._outbox,
            last_seq=last_seq,
            delivered_seq=delivered,
        )
        connection.send_frame(
            frames.hello(
                user_id=user.pk, device_id=device.pk, last_seq=last_seq, delivered_seq=delivered
            )
        )
        self.connection = connection
        await connection.open()

    def _refuse(self, reason: str) -> None:
        code = (
            protocol.CLOSE_ORIGIN_NOT_ALLOWED
            if reason.startswith("origin")
            else protocol.CLOSE_NOT_AUTHENTICATED
        )
        error = protocol.error_frame(reason, "Authenticate with a device token or a session.")
        self._outbox.put(orjson.dumps(error))
        self._outbox.close(code)
