"""Presence and typing for live WebSocket connections, with no per-heartbeat I/O.

Each connection has a :class:`PresenceSession`. Every frame the client sends (a ``ping``
when idle) only stores ``time.monotonic()`` on it: no database, no Redis. Once per
``PRESENCE_TICK`` the process's :class:`Tracker` does all the I/O for all its connections:

1. closes connections silent for more than ``PRESENCE_TIMEOUT`` (close code 4010), which
   takes them offline through the normal close path, and those whose device was revoked or
   whose user was deactivated, also by another process (close code 4002; one query for all
   the process's connections, ``accounts.revocation``);
2. extends the others' leases in the presence backend, in one round trip;
3. sweeps expired leases of processes that died (one process per tick does the work),
   publishing their users' offline transitions.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time

import orjson
from django.conf import settings

from accounts.revocation import revoked_device_ids
from chat.connection.extensions import ExtensionHost
from chat.protocol import BaseClientFrame
from chat.services.conversations import UnknownConversation
from chatproject.coalesce import PerLoop
from chatproject.db_threads import in_db_thread
from chatproject.errors import RateLimited
from chatproject.per_loop import PerLoopRegistry

from . import services
from .backends import Lease
from .frames import PresenceSnapshotFrame, TypingFrame, WatchFrame

logger = logging.getLogger(__name__)

# A connection sends at most one typing event per conversation per this many seconds;
# more are dropped without a reply (clients repeat typing while the user types).
TYPING_MIN_INTERVAL_SECONDS = 2.0
# Conversation membership for typing is read once and reused for this long, so typing
# frames cost no database query (a removed member may type for up to this long).
MEMBERSHIP_CACHE_SECONDS = 60.0
MEMBERSHIP_CACHE_SIZE = 256
# A snapshot reads up to 1,000 users' state: one per connection per this many seconds.
WATCH_MIN_INTERVAL_SECONDS = 5.0
# Presence events are recognised by their first bytes, without parsing them.
_PRESENCE_PREFIX = b'{"type":"presence"'

_process_token = secrets.token_hex(4)
_connection_numbers = itertools.count(1)

# A reconnect storm opens (and closes) its leases in one round trip per batch, not one
# thread hop and round trip per socket.
_opened_coalesced: PerLoop[tuple[int, str], None] = PerLoop(
    services.connections_opened, max_batch=500
)
_closed_coalesced: PerLoop[tuple[int, str, float], None] = PerLoop(
    services.connections_closed, max_batch=500
)


class PresenceSession:
    """One connection's presence lease, its presence subscription and its typing limits:
    presence's extension of a chat connection (chat.connection.extensions)."""

    __slots__ = (
        "_held",
        "_host",
        "_members",
        "_opened_at",
        "_started",
        "_stopped",
        "_typed_at",
        "_watched_at",
        "_watching",
        "device_id",
        "last_frame",
        "member",
        "user_id",
    )

    def __init__(self, host: ExtensionHost) -> None:
        self.user_id = host.user_id
        self.device_id = host.device_id
        self.member = f"{host.device_id}/{_process_token}{next(_connection_numbers)}"
        self.last_frame = time.monotonic()
        self._host = host
        self._started = False
        self._stopped = False
        self._opened_at = 0.0
        self._watching = False
        self._held: list[bytes] | None = None
        self._watched_at = -WATCH_MIN_INTERVAL_SECONDS
        self._typed_at: dict[int, float] = {}
        self._members: dict[int, tuple[float, list[int] | None]] = {}

    def touch(self) -> None:
        """Any frame from the client is a heartbeat."""
        self.last_frame = time.monotonic()

    def last_frame_wall_clock(self) -> float:
        return time.time() - (time.monotonic() - self.last_frame)

    async def start(self) -> None:
        self._started = True
        get_tracker().add(self)
        try:
            await _opened_coalesced((self.user_id, self.member))
            self._opened_at = time.time()
        except Exception:
            # Presence must never cost a chat connection; the next tick re-adds the lease.
            logger.exception("presence: could not open the lease of user %s", self.user_id)

    async def stop(self) -> None:
        """Idempotent: runs on close (revocation, timeout) and again on disconnect."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        get_tracker().discard(self)
        try:
            # Never before the online event's time: clients order events by it.
            last_frame_at = max(self.last_frame_wall_clock(), self._opened_at)
            await _closed_coalesced((self.user_id, self.member, last_frame_at))
        except Exception:
            # The lease then expires and the sweep publishes the offline transition.
            logger.exception("presence: could not close the lease of user %s", self.user_id)

    async def time_out(self) -> None:
        await self._host.close_silent()

    async def revoke(self) -> None:
        await self._host.close_revoked()

    async def handle(self, frame: BaseClientFrame) -> None:
        """presence's client frames (presence.frames.CLIENT_FRAMES)."""
        if isinstance(frame, WatchFrame):
            await self.watch(frame.ref)
        elif isinstance(frame, TypingFrame):
            await self.typing(frame.conversation_id)

    # --- presence subscription -------------------------------------------------------------
    def accepts(self, frame: bytes) -> bool:
        """Whether an ephemeral frame from the hub goes to this device now."""
        if not frame.startswith(_PRESENCE_PREFIX):
            return True
        if self._held is not None:
            self._held.append(frame)  # sent after the snapshot, which is being read
            return False
        return self._watching

    async def watch(self, ref: str | None) -> None:
        """Send the snapshot, then the changes that happened while it was read, then live."""
        now = time.monotonic()
        wait = self._watched_at + WATCH_MIN_INTERVAL_SECONDS - now
        if wait > 0:
            raise RateLimited(
                "Too many watch requests; you already get changes live.", retry_after=wait
            )
        self._watched_at = now
        held = self._held = []
        try:
            users = await in_db_thread(services.snapshot, self.user_id)
            snapshot: PresenceSnapshotFrame = {
                "type": "presence.snapshot",
                "ref": ref,
                "users": users,
            }
            self._host.send_bytes(orjson.dumps(snapshot))
            while held:
                self._host.send_bytes(held.pop(0))
            self._watching = True
        finally:
            self._held = None  # also after a failure: nothing may be held forever

    # --- typing ----------------------------------------------------------------------------
    async def typing(self, conversation_id: int) -> None:
        now = time.monotonic()
        cached = self._members.get(conversation_id)
        if cached is None or now - cached[0] > MEMBERSHIP_CACHE_SECONDS:
            if len(self._members) >= MEMBERSHIP_CACHE_SIZE:
                del self._members[next(iter(self._members))]
            try:
                recipients: list[int] | None = await in_db_thread(
                    services.typing_recipients, self.user_id, conversation_id
                )
            except UnknownConversation:
                recipients = None
            cached = self._members[conversation_id] = (now, recipients)
        if cached[1] is None:
            raise UnknownConversation("No such conversation, or you are not a member.")
        if now - self._typed_at.get(conversation_id, -TYPING_MIN_INTERVAL_SECONDS) < (
            TYPING_MIN_INTERVAL_SECONDS
        ):
            return
        self._typed_at[conversation_id] = now
        await services.publish_typing(
            user_id=self.user_id, conversation_id=conversation_id, recipients=cached[1]
        )


class Tracker:
    """The presence sessions of one event loop (one server process) and their ticker."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sessions: set[PresenceSession] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, session: PresenceSession) -> None:
        self.sessions.add(session)
        if self._task is None:
            self._task = self.loop.create_task(self._run(), name="presence-ticker")

    def discard(self, session: PresenceSession) -> None:
        self.sessions.discard(session)
        # A process without connections has no one to refresh and no watcher to tell.
        if not self.sessions and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(settings.PRESENCE_TICK)
            try:
                await self.tick()
            except Exception:
                logger.exception("presence: tick failed")

    async def tick(self) -> None:
        revoked = await in_db_thread(
            revoked_device_ids, [session.device_id for session in self.sessions]
        )
        now, wall = time.monotonic(), time.time()
        timeout = settings.PRESENCE_TIMEOUT
        leases: list[Lease] = []
        for session in list(self.sessions):
            silent = now - session.last_frame
            if session.device_id in revoked:
                await session.revoke()
            elif silent > timeout:
                await session.time_out()
            else:
                leases.append(Lease(session.user_id, session.member, wall - silent + timeout))
        missing = await in_db_thread(services.refresh_leases, leases)
        live = {session.member for session in self.sessions}
        if reopened := [(lease.user_id, lease.member) for lease in missing if lease.member in live]:
            await in_db_thread(services.connections_opened, reopened)
        await in_db_thread(services.sweep_expired)


_trackers: PerLoopRegistry[Tracker] = PerLoopRegistry(Tracker)


def get_tracker() -> Tracker:
    return _trackers.get()
