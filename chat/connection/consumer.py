"""The chat WebSocket endpoint: a plain ASGI application, one instance per socket.

It accepts the socket, refuses it when the authentication middleware found no device,
or says ``hello`` and hands the socket's frames to the device's connection
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

from accounts.models import Device, User
from chat import frames, protocol
from chat.outbox import AsgiSend, Outbox
from chat.services import sync as sync_service
from chatproject.coalesce import PerLoop

from .device import DeviceConnection

AsgiReceive = Callable[[], Awaitable[dict[str, Any]]]
AsgiApp = Callable[[dict[str, Any], AsgiReceive, AsgiSend], Awaitable[None]]

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

    @classmethod
    def as_asgi(cls) -> AsgiApp:
        """The ASGI application for the URL router: a new instance per socket."""

        async def app(scope: dict[str, Any], receive: AsgiReceive, send: AsgiSend) -> None:
            await cls(scope, send).run(receive)

        return app

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
        # Taken out of the scope: a socket lives for hours, and it needs only the two ids.
        user: User | None = self.scope.pop("user", None)
        device: Device | None = self.scope.pop("device", None)
        await self._send({"type": "websocket.accept"})
        if user is None or device is None:
            self._refuse(self.scope.get("auth_refusal") or "not_authenticated")
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
