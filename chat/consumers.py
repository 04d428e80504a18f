"""The chat WebSocket consumer: one per connected device.

It translates frames to service calls and service errors to ``error`` frames, and keeps
the device's stream gap-free: every event with a ``seq`` reaches the device exactly once
and in order, whether it arrives live, out of order from concurrent senders, or has to be
read back from the device's sync queue.

It deliberately bypasses parts of Channels' consumer machinery on the per-frame path:
events come from the process hub (chat.realtime.hub), not a channel layer, and frames are
dispatched without Channels' per-message hop to a worker thread (database work happens
only in the service calls that need it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from channels.consumer import AsyncConsumer
from django.conf import settings

from accounts.models import Device, User
from accounts.revocation import DeviceRevoked
from chat import hooks, protocol, realtime
from chat.outbox import Outbox
from chat.send_batcher import send_coalesced
from chat.services import messages as message_service
from chat.services import sync as sync_service
from chat.services.messages import SendRequest
from chat.services.payloads import iso, message_payload
from chatproject.coalesce import PerLoop
from chatproject.db_threads import in_db_thread
from chatproject.errors import RateLimited, ServiceError
from presence.session import PresenceSession

logger = logging.getLogger(__name__)

# A seq gap not filled by a late live event within this time is read from the sync queue.
GAP_FILL_DELAY_SECONDS = 0.2
PENDING_LIMIT = 2_000
ACK_FLUSH_SECONDS = 1.0
ACK_FLUSH_SLOTS = 10
# Frame flood control: a token bucket per connection; persistent abuse closes the socket.
FRAME_RATE_PER_SECOND = 30.0
FRAME_BURST = 60.0
ABUSE_CLOSE_AFTER = 50


# A reconnect storm reads its hello states in two queries per batch, not two per socket.
_hello_state_coalesced: PerLoop[tuple[int, int], tuple[int, int]] = PerLoop(
    sync_service.hello_states, max_batch=500
)

# Every connected device flushes its acks about once a second; those of all the process's
# devices are stored together.
_ack_coalesced: PerLoop[sync_service.Ack, None] = PerLoop(
    sync_service.acknowledge_many, max_batch=500
)


class ChatConsumer(AsyncConsumer):  # type: ignore[misc]
    user_id: int
    device_id: int

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        self.base_send = send
        self._connected = False
        self._closed = False
        self._live = False
        self._cursor = 0
        # The highest seq this connection knows exists (hello, events): acks are capped to it.
        self._newest_seq = 0
        self._pending: dict[int, bytes] = {}
        self._gap_timer: asyncio.TimerHandle | None = None
        # Armed when an event is written live and none is armed: push if still unacked.
        self._unacked_timer: asyncio.TimerHandle | None = None
        self._unacked_push: asyncio.Task[None] | None = None
        self._catching_up = False
        self._catch_up_task: asyncio.Task[None] | None = None
        self._acked = 0
        self._acked_flushed = 0
        self._ack_task: asyncio.Task[None] | None = None
        self._tokens = FRAME_BURST
        self._tokens_at = time.monotonic()
        self._violations = 0
        self._presence: PresenceSession | None = None
        self._presence_stop: asyncio.Task[None] | None = None
        # Frames are queued, never awaited: a slow reader delays no one (chat.outbox).
        self._outbox = Outbox(send)
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    await self._on_frame(message.get("text") or message.get("bytes") or b"")
                elif kind == "websocket.connect":
                    await self._on_connect()
                elif kind == "websocket.disconnect":
                    break
        finally:
            await self._on_disconnect()

    # --- connection lifecycle ------------------------------------------------------------
    async def _on_connect(self) -> None:
        # Taken out of the scope: a socket lives for hours, and it needs only the two ids.
        user: User | None = self.scope.pop("user", None)
        device: Device | None = self.scope.pop("device", None)
        await self.base_send({"type": "websocket.accept"})
        self._connected = True
        if user is None or device is None:
            reason = self.scope.get("auth_refusal") or "not_authenticated"
            code = (
                protocol.CLOSE_ORIGIN_NOT_ALLOWED
                if reason.startswith("origin")
                else protocol.CLOSE_NOT_AUTHENTICATED
            )
            self._send_frame(
                protocol.error_frame(reason, "Authenticate with a device token or a session.")
            )
            self._close(code)
            return
        self.user_id = user.pk
        self.device_id = device.pk
        last_seq, delivered = await _hello_state_coalesced((self.user_id, self.device_id))
        self._acked = self._acked_flushed = delivered
        self._newest_seq = last_seq
        hello: protocol.HelloFrame = {
            "type": "hello",
            "user_id": self.user_id,
            "device_id": self.device_id,
            "last_seq": last_seq,
            "delivered_seq": delivered,
            "heartbeat_interval": settings.PRESENCE_HEARTBEAT_INTERVAL,
            "max_text_length": settings.MAX_MESSAGE_LENGTH,
        }
        self._send_frame(hello)
        # Created before registering: events may arrive while registration awaits Redis,
        # and presence events must already be filtered then.
        self._presence = PresenceSession(
            user_id=self.user_id,
            device_id=self.device_id,
            on_timeout=self.close_silent,
            on_revoked=self.close_revoked,
        )
        # Registered after hello so that no event precedes it; whatever is published in
        # between is in the sync queue, which the client reads next.
        await realtime.get_hub().register(self)
        await self._presence.start()

    async def _on_disconnect(self) -> None:
        self._closed = True
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        if self._unacked_timer is not None:
            # Gone with events it never acknowledged (app killed or suspended): push now.
            self._unacked_timer.cancel()
            await self._push_unacked(self._cursor)
        self._outbox.stop()
        if self._catch_up_task is not None and not self._catch_up_task.done():
            self._catch_up_task.cancel()
        if hasattr(self, "device_id"):
            await realtime.get_hub().unregister(self)
            if self._ack_task is not None:
                self._ack_task.cancel()
            await self._flush_ack()
        if self._presence is not None:
            await self._presence.stop()

    def _close(self, code: int, *, drop_queued: bool = False) -> None:
        if not self._closed:
            self._closed = True
            # After the frames already queued (the error frame that explains the close).
            self._outbox.close(code, drop_queued=drop_queued)
            # Offline at once (logout, revocation, heartbeat timeout), not when the peer
            # acknowledges the close, which a dead peer never does. A task: this may run
            # inside the hub's dispatch, which must not wait for the database.
            if self._presence is not None:
                self._presence_stop = asyncio.create_task(self._presence.stop())

    async def close_silent(self) -> None:
        """Called by the presence tracker when no frame came for PRESENCE_TIMEOUT."""
        self._send_frame(
            protocol.error_frame("heartbeat_timeout", "No frame within the heartbeat timeout.")
        )
        self._close(protocol.CLOSE_HEARTBEAT_TIMEOUT)

    async def close_revoked(self) -> None:
        """The device was revoked or its user deactivated (the hub, the presence tick or a
        refused send found out)."""
        self._send_frame(protocol.error_frame("revoked", "This device was logged out."))
        self._close(protocol.CLOSE_REVOKED)

    # --- outgoing --------------------------------------------------------------------------
    def _send_frame(self, frame: Any) -> None:
        self._send_bytes(orjson.dumps(frame))

    def _send_bytes(self, data: bytes) -> None:
        """Queue a frame for the socket; never waits for the peer."""
        if self._closed or not self._connected:
            return
        if not self._outbox.put(data):
            # The device reads slower than it is written to. What it missed is in its sync
            # queue: it reconnects and syncs from its cursor.
            self._close(protocol.CLOSE_TOO_SLOW, drop_queued=True)

    async def deliver(self, seq: int | None, frame: bytes) -> None:
        """Called by the hub for every event addressed to this device's user. Only queues
        frames: one slow socket never delays the hub's delivery to the others."""
        if seq is None:
            if self._presence is None or self._presence.accepts(frame):
                self._send_bytes(frame)
            return
        self._newest_seq = max(self._newest_seq, seq)
        if not self._live or self._catching_up:
            if len(self._pending) < PENDING_LIMIT:
                self._pending[seq] = frame
            return
        if seq <= self._cursor:
            return
        if seq == self._cursor + 1:
            self._cursor = seq
            self._send_bytes(frame)
            self._flush_pending()
            if self._unacked_timer is None:
                self._unacked_timer = asyncio.get_running_loop().call_later(
                    settings.PUSH_UNACKED_DELAY, self._unacked_timeout, self._cursor
                )
            return
        self._pending[seq] = frame
        if self._gap_timer is None:
            self._gap_timer = asyncio.get_running_loop().call_later(
                GAP_FILL_DELAY_SECONDS, self._gap_timeout
            )

    def _flush_pending(self) -> None:
        while self._pending:
            frame = self._pending.pop(self._cursor + 1, None)
            if frame is None:
                break
            self._cursor += 1
            self._send_bytes(frame)
        for stale in [s for s in self._pending if s <= self._cursor]:
            del self._pending[stale]
        if not self._pending and self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None

    def _unacked_timeout(self, seq: int) -> None:
        self._unacked_timer = None
        if not self._closed and self._acked < seq:
            self._unacked_push = asyncio.create_task(self._push_unacked(seq))

    async def _push_unacked(self, seq: int) -> None:
        """The device was sent events up to ``seq`` and did not acknowledge them within
        PUSH_UNACKED_DELAY: maybe the app is suspended with its socket open. Enqueueing
        may cost a broker round trip, so it runs in a thread like the service calls."""
        if self._acked >= seq:
            return
        try:
            await in_db_thread(
                hooks.publish,
                hooks.DeliveryUnacknowledged(
                    user_id=self.user_id,
                    device_id=self.device_id,
                    acked_seq=self._acked,
                    delivered_seq=seq,
                ),
            )
        except Exception:
            logger.exception("chat consumer: queueing an unacknowledged-device push failed")

    async def resync(self) -> None:
        """Live events may have been missed (the process's Redis subscription was down):
        read the sync queue after the cursor. Before the device is live, its own sync
        requests will read it anyway."""
        if self._live and not self._catching_up and not self._closed:
            await self._catch_up()

    def _gap_timeout(self) -> None:
        self._gap_timer = None
        if self._pending and not self._closed and not self._catching_up:
            self._catch_up_task = asyncio.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        """Fill a gap from the sync queue: everything after the cursor, then what was pending."""
        self._catching_up = True
        try:
            while not self._closed:
                page = await in_db_thread(
                    sync_service.sync_page, self.user_id, after_seq=self._cursor, limit=500
                )
                for event in page.events:
                    if event["seq"] == self._cursor + 1:
                        self._cursor = event["seq"]
                        # A live frame held for this seq goes instead: for this device's
                        # own send, that is its ``sent`` reply.
                        live = self._pending.pop(self._cursor, None)
                        if live is None:
                            self._send_frame(event)
                        else:
                            self._send_bytes(live)
                if not page.has_more:
                    break
        finally:
            self._catching_up = False
        self._flush_pending()
        if self._pending and self._gap_timer is None and not self._closed:
            self._gap_timer = asyncio.get_running_loop().call_later(
                GAP_FILL_DELAY_SECONDS, self._gap_timeout
            )

    # --- incoming --------------------------------------------------------------------------
    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(
            FRAME_BURST, self._tokens + (now - self._tokens_at) * FRAME_RATE_PER_SECOND
        )
        self._tokens_at = now
        if self._tokens >= 1.0:
            if self._tokens >= FRAME_BURST - 1.0:
                self._violations = 0  # the client slowed down: past strikes are forgiven
            self._tokens -= 1.0
            return True
        return False

    async def _on_frame(self, raw: str | bytes) -> None:
        if not hasattr(self, "device_id") or self._closed:
            return
        if self._presence is not None:
            self._presence.touch()  # any frame is a heartbeat; no I/O here
        if not self._take_token():
            self._violations += 1
            if self._violations >= ABUSE_CLOSE_AFTER:
                self._send_frame(protocol.error_frame("flood", "Too many frames; closing."))
                self._close(protocol.CLOSE_ABUSIVE)
                return
            self._send_frame(protocol.error_frame("rate_limited", "Too many frames; slow down."))
            return
        try:
            frame = protocol.parse_client_frame(raw)
        except protocol.FrameError as exc:
            self._send_frame(protocol.error_frame(exc.code, exc.message, exc.ref))
            return
        handler = getattr(self, "_handle_" + frame.type)
        try:
            await handler(frame)
        except RateLimited as exc:
            self._send_frame(
                {
                    **protocol.error_frame(exc.code, exc.message, frame.ref),
                    "retry_after": exc.retry_after,
                }
            )
        except DeviceRevoked as exc:
            self._send_frame(protocol.error_frame(exc.code, exc.message, frame.ref))
            self._close(protocol.CLOSE_REVOKED)
        except ServiceError as exc:
            self._send_frame(protocol.error_frame(exc.code, exc.message, frame.ref))
        except Exception:
            logger.exception("chat consumer: %s frame failed", frame.type)
            self._send_frame(
                protocol.error_frame("server_error", "Something went wrong; try again.", frame.ref)
            )

    async def _handle_ping(self, frame: protocol.PingFrame) -> None:
        self._send_frame({"type": "pong", "ref": frame.ref})

    async def _handle_watch(self, frame: protocol.WatchFrame) -> None:
        if self._presence is not None:
            await self._presence.watch(frame.ref, self._send_bytes)

    async def _handle_typing(self, frame: protocol.TypingFrame) -> None:
        if self._presence is not None:
            await self._presence.typing(frame.conversation_id)

    async def _handle_send(self, frame: protocol.SendFrame) -> None:
        result = await send_coalesced(
            SendRequest(
                sender_id=self.user_id,
                device_id=self.device_id,
                conversation_id=frame.conversation_id,
                client_msg_id=frame.client_msg_id,
                text=frame.text,
            )
        )
        sent: protocol.SentFrame = {
            "type": "sent",
            "ref": frame.ref,
            "client_msg_id": frame.client_msg_id,
            "conversation_id": result.message.conversation_id,
            "message_id": result.message.id,
            "seq": result.seq,
            "created_at": iso(result.message.created_at) or "",
            "duplicate": result.duplicate,
        }
        if result.duplicate:
            self._send_frame(sent)
        elif self._live and result.seq > self._cursor:
            # The ack takes this device's place in its own stream (it was skipped by the
            # fan-out), so its seq keeps the stream gap-free.
            await self.deliver(result.seq, orjson.dumps(sent))
        else:
            # Not live yet, or a gap fill already sent this seq as ``message.new``: the
            # reply goes out of the stream, without a seq (the sync page has the event).
            del sent["seq"]
            self._send_frame(sent)

    async def _handle_sync(self, frame: protocol.SyncFrame) -> None:
        after = frame.after if frame.after is not None else self._acked
        page = await in_db_thread(
            sync_service.sync_page, self.user_id, after_seq=after, limit=frame.limit
        )
        reply: protocol.SyncPageFrame = {
            "type": "sync.page",
            "ref": frame.ref,
            "events": page.events,
            "last_seq": page.last_seq,
            "has_more": page.has_more,
        }
        self._send_frame(reply)
        self._newest_seq = max(self._newest_seq, page.last_seq)
        if not page.has_more:
            self._cursor = page.last_seq
            self._live = True
            self._flush_pending()
            if self._pending and self._gap_timer is None:
                self._gap_timer = asyncio.get_running_loop().call_later(
                    GAP_FILL_DELAY_SECONDS, self._gap_timeout
                )

    async def _handle_ack(self, frame: protocol.AckFrame) -> None:
        # Never past what exists: the default ``after`` of sync must not skip events.
        self._acked = max(self._acked, min(frame.seq, self._newest_seq))
        if self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.create_task(self._flush_ack_later())

    async def _flush_ack_later(self) -> None:
        # Sockets flush on shared clock ticks, so the flushes of many devices reach the ack
        # coalescer together (400 devices acking once a second on their own clocks cost 400
        # transactions a second). There are ACK_FLUSH_SLOTS ticks per period, a device
        # keeping to its slot: one burst of every device's ack stalled deliveries behind it.
        period = ACK_FLUSH_SECONDS / ACK_FLUSH_SLOTS
        slot = (self.device_id % ACK_FLUSH_SLOTS) * period
        now = asyncio.get_running_loop().time()
        await asyncio.sleep(ACK_FLUSH_SECONDS - (now - slot) % ACK_FLUSH_SECONDS)
        await self._flush_ack()

    async def _flush_ack(self) -> None:
        if self._acked > self._acked_flushed:
            previous, self._acked_flushed = self._acked_flushed, self._acked
            try:
                await _ack_coalesced(
                    sync_service.Ack(self.user_id, self.device_id, self._acked, previous)
                )
            except Exception:
                logger.exception("chat consumer: storing the delivery cursor failed")

    async def _handle_read(self, frame: protocol.ReadFrame) -> None:
        membership = await in_db_thread(
            sync_service.mark_read,
            user_id=self.user_id,
            conversation_id=frame.conversation_id,
            message_id=frame.message_id,
        )
        self._send_frame(
            {
                "type": "ok",
                "ref": frame.ref,
                "last_read_id": membership.last_read_id,
                "unread_count": membership.unread_count,
            }
        )

    async def _handle_edit(self, frame: protocol.EditFrame) -> None:
        await in_db_thread(
            message_service.edit_message,
            user_id=self.user_id,
            message_id=frame.message_id,
            text=frame.text,
        )
        self._send_frame({"type": "ok", "ref": frame.ref})

    async def _handle_delete(self, frame: protocol.DeleteFrame) -> None:
        await in_db_thread(
            message_service.delete_message, user_id=self.user_id, message_id=frame.message_id
        )
        self._send_frame({"type": "ok", "ref": frame.ref})

    async def _handle_fetch(self, frame: protocol.FetchFrame) -> None:
        found = await in_db_thread(
            message_service.fetch_messages, self.user_id, list(frame.message_ids)
        )
        self._send_frame(
            {"type": "messages", "ref": frame.ref, "messages": [message_payload(m) for m in found]}
        )
