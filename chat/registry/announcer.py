"""This process's record in the registry, refreshed by a daemon thread.

Started by chatproject/asgi.py in every server process that advertises a WebSocket URL
(``CHAT_SERVER_WS_URL``). Every ``CHAT_SERVER_HEARTBEAT`` seconds it publishes the
process's open connections (all its hubs) with a time to live of ``CHAT_SERVER_TTL``;
a failed publish is logged and retried at the next beat (the record may lapse meanwhile,
which only steers new clients elsewhere). When the process starts draining
(chatproject/lifecycle.py) it beats at once, so the record says ``draining`` within
milliseconds. At a clean exit the record is removed.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import secrets
import socket
import threading
import time

from django.conf import settings

from chat.realtime.hub import local_hubs
from chatproject import lifecycle

from . import ServerRecord, get_registry

logger = logging.getLogger(__name__)


class Announcer:
    def __init__(self, ws_url: str, zone: str = "") -> None:
        self.server_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.ws_url = ws_url
        self.zone = zone
        self.started_at = time.time()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chat-registry", daemon=True)

    def record(self) -> ServerRecord:
        return ServerRecord(
            server_id=self.server_id,
            ws_url=self.ws_url,
            zone=self.zone,
            started_at=self.started_at,
            connections=sum(hub.connection_count for hub in local_hubs()),
            draining=lifecycle.is_draining(),
        )

    def beat(self) -> None:
        get_registry().publish(self.record(), ttl=settings.CHAT_SERVER_TTL, now=time.time())

    def start(self) -> None:
        self._thread.start()
        lifecycle.on_draining(self._wake.set)
        atexit.register(self.stop)

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        try:
            get_registry().remove(self.server_id)
        except Exception:  # the record then lapses within its TTL
            logger.warning("registry: could not remove %s", self.server_id, exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception:
                logger.warning("registry: heartbeat of %s failed", self.server_id, exc_info=True)
            self._wake.wait(settings.CHAT_SERVER_HEARTBEAT)
            self._wake.clear()


@functools.cache
def start_announcing() -> Announcer | None:
    """Start this process's announcer (once), if it advertises a URL."""
    if not settings.CHAT_SERVER_WS_URL:
        return None
    announcer = Announcer(settings.CHAT_SERVER_WS_URL, settings.CHAT_SERVER_ZONE)
    announcer.start()
    return announcer
