"""The frame router: one client frame parsed, handed to its handler, and any error the
handler raises answered with an ``error`` frame that echoes the client's ``ref``.

One handler per client frame type; an extension's frames (chat.connection.extensions) go
to that extension. Handlers answer with ``send_frame`` and never wait for the socket.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import orjson

from accounts.revocation import DeviceRevoked
from chat import frames, protocol, replies
from chat.send_batcher import send_coalesced
from chat.services import messages as message_service
from chat.services import sync as sync_service
from chat.services.messages import SendRequest
from chatproject.db_threads import in_db_thread
from chatproject.errors import RateLimited, ServiceError

from .acks import AckFlusher
from .extensions import ConnectionExtension, Extension
from .stream import DeviceStream

logger = logging.getLogger(__name__)

Handler = Callable[["FrameRouter", Any], Awaitable[None]]


class RouterHost(Protocol):
    """The connection the router answers on."""

    user_id: int
    device_id: int

    def send_frame(self, frame: Any) -> None: ...

    def close(self, code: int) -> None: ...


class FrameRouter:
    __slots__ = ("_acks", "_extensions", "_host", "_stream")

    def __init__(
        self,
        host: RouterHost,
        *,
        stream: DeviceStream,
        acks: AckFlusher,
        extensions: Sequence[tuple[Extension, ConnectionExtension]] = (),
    ) -> None:
        self._host = host
        self._stream = stream
        self._acks = acks
        self._extensions = extensions

    async def route(self, raw: str | bytes) -> None:
        """Parse and handle one frame; every failure becomes an error frame."""
        try:
            frame = protocol.parse_client_frame(raw)
        except protocol.FrameError as exc:
            self._host.send_frame(protocol.error_frame(exc.code, exc.message, exc.ref))
            return
        try:
            await self._handle(frame)
        except RateLimited as exc:
            self._host.send_frame(
                {
                    **protocol.error_frame(exc.code, exc.message, frame.ref),
                    "retry_after": exc.retry_after,
                }
            )
        except DeviceRevoked as exc:
            self._host.send_frame(protocol.error_frame(exc.code, exc.message, frame.ref))
            self._host.close(protocol.CLOSE_REVOKED)
        except ServiceError as exc:
            self._host.send_frame(protocol.error_frame(exc.code, exc.message, frame.ref))
        except Exception:
            logger.exception("chat connection: %s frame failed", frame.type)
            self._host.send_frame(
                protocol.error_frame("server_error", "Something went wrong; try again.", frame.ref)
            )

    async def _handle(self, frame: protocol.BaseClientFrame) -> None:
        # An extension's frame types come first (it may take over one of chat's). The
        # handler table is the class's, not each connection's (memory per socket).
        for extension, instance in self._extensions:
            if frame.type in extension.client_frame_types:
                await instance.handle(frame)
                return
        handler = _CHAT_HANDLERS.get(frame.type)
        if handler is not None:
            await handler(self, frame)
        else:
            await self._handle_unserved(frame)

    async def _handle_unserved(self, frame: protocol.BaseClientFrame) -> None:
        # A frame type registered by an extension this connection was opened without
        # (registered after the connection opened): as if the extension did nothing.
        logger.debug("chat connection: no handler for %s frames", frame.type)

    # --- one handler per client frame type -------------------------------------------------
    async def handle_ping(self, frame: protocol.PingFrame) -> None:
        self._host.send_frame(frames.pong(frame.ref))

    async def handle_send(self, frame: protocol.SendFrame) -> None:
        result = await send_coalesced(
            SendRequest(
                sender_id=self._host.user_id,
                device_id=self._host.device_id,
                conversation_id=frame.conversation_id,
                client_msg_id=frame.client_msg_id,
                text=frame.text,
            )
        )
        sent = replies.sent_frame(frame.ref, result)
        if result.duplicate:
            self._host.send_frame(sent)
        elif self._stream.live and result.seq > self._stream.cursor:
            # The ack takes this device's place in its own stream (it was skipped by the
            # fan-out), so its seq keeps the stream gap-free.
            self._stream.deliver(result.seq, orjson.dumps(sent))
        else:
            # Not live yet, or a gap fill already sent this seq as ``message.new``: the
            # reply goes out of the stream, without a seq (the sync page has the event).
            del sent["seq"]
            self._host.send_frame(sent)

    async def handle_sync(self, frame: protocol.SyncFrame) -> None:
        after = frame.after if frame.after is not None else self._acks.acked
        page = await in_db_thread(
            sync_service.sync_page, self._host.user_id, after_seq=after, limit=frame.limit
        )
        self._host.send_frame(replies.sync_page_frame(frame.ref, page))
        self._stream.synced(page.last_seq, has_more=page.has_more)

    async def handle_ack(self, frame: protocol.AckFrame) -> None:
        self._acks.ack(frame.seq, newest_seq=self._stream.newest_seq)

    async def handle_read(self, frame: protocol.ReadFrame) -> None:
        membership = await in_db_thread(
            sync_service.mark_read,
            user_id=self._host.user_id,
            conversation_id=frame.conversation_id,
            message_id=frame.message_id,
        )
        self._host.send_frame(replies.read_ok(frame.ref, membership))

    async def handle_edit(self, frame: protocol.EditFrame) -> None:
        await in_db_thread(
            message_service.edit_message,
            user_id=self._host.user_id,
            message_id=frame.message_id,
            text=frame.text,
        )
        self._host.send_frame(frames.ok(frame.ref))

    async def handle_delete(self, frame: protocol.DeleteFrame) -> None:
        await in_db_thread(
            message_service.delete_message, user_id=self._host.user_id, message_id=frame.message_id
        )
        self._host.send_frame(frames.ok(frame.ref))

    async def handle_fetch(self, frame: protocol.FetchFrame) -> None:
        found = await in_db_thread(
            message_service.fetch_messages, self._host.user_id, list(frame.message_ids)
        )
        self._host.send_frame(replies.messages_frame(frame.ref, found))


# One handler per chat client frame type; an extension's frames go to the extension.
_CHAT_HANDLERS: dict[str, Handler] = {
    "send": FrameRouter.handle_send,
    "sync": FrameRouter.handle_sync,
    "ack": FrameRouter.handle_ack,
    "read": FrameRouter.handle_read,
    "edit": FrameRouter.handle_edit,
    "delete": FrameRouter.handle_delete,
    "fetch": FrameRouter.handle_fetch,
    "ping": FrameRouter.handle_ping,
}
