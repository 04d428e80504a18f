"""``manage.py serve``: migrate, then run the ASGI server and print the URL to open.

This is the one-process product: HTTP, WebSocket and static files from one server. In
production run several of these behind a load balancer (docs/operations.md).

With uvicorn (the default), SIGTERM drains the process before it exits
(chatproject/lifecycle.py): it is marked draining (``/readyz`` 503, the registry record
says so), stops listening, closes its WebSockets with 4012 "reconnect elsewhere" once each
has answered the frame in hand, and exits when they are gone or after ``DRAIN_TIMEOUT``
seconds. A second SIGTERM, or SIGINT (Ctrl+C), exits at once as uvicorn does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from chatproject import lifecycle, listen

logger = logging.getLogger(__name__)


# How uvicorn runs the app (the benchmark's Channels tutorial target uses the same).
UVICORN_OPTIONS: dict[str, Any] = {
    # The sans-I/O websockets implementation costs ~24% less CPU per frame than the older
    # "websockets" mode (measured on a prototype of this fan-out design). Its send() waits
    # while the peer does not read (transport flow control): the consumers' bounded
    # outboxes rely on that (chat/outbox.py).
    "ws": "websockets-sansio",
    "ws_max_size": 1_048_576,
    # Compression costs CPU on every frame; chat frames are small.
    "ws_per_message_deflate": False,
    "loop": "uvloop",
    "http": "httptools",
    "lifespan": "off",
    "log_level": "warning",
}


class Command(BaseCommand):
    help = "Apply migrations and serve the chat app (HTTP + WebSocket)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--server", choices=["uvicorn", "daphne", "granian"], default="uvicorn")
        parser.add_argument("--no-migrate", action="store_true", help="Skip applying migrations.")

    def handle(
        self, *args: Any, host: str, port: int, server: str, no_migrate: bool, **options: Any
    ) -> None:
        if not no_migrate:
            call_command("migrate", interactive=False, verbosity=0)
        lifecycle.mark_serving()
        shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
        self.stdout.write(
            self.style.SUCCESS(f"Chat is running at http://{shown_host}:{port}/  (Ctrl+C to stop)")
        )
        self.stdout.flush()
        if not settings.CHAT_SERVER_WS_URL:
            # What this process tells clients in the registry (chat/registry/); behind a
            # proxy or TLS, set CHAT_SERVER_WS_URL to the URL clients can reach.
            # (Settings for this process, the environment for server workers it spawns.)
            settings.CHAT_SERVER_WS_URL = f"ws://{shown_host}:{port}/ws/"
            os.environ["CHAT_SERVER_WS_URL"] = settings.CHAT_SERVER_WS_URL
        if server == "daphne":
            from daphne.cli import CommandLineInterface

            CommandLineInterface().run(
                ["-b", host, "-p", str(port), "chatproject.asgi:application"]
            )
            return
        if server == "granian":
            _serve_granian(host, port)
            return
        import uvicorn

        config = uvicorn.Config(
            "chatproject.asgi:application",
            host=host,
            port=port,
            ws_ping_interval=settings.WS_PROTOCOL_PING_INTERVAL or None,
            **UVICORN_OPTIONS,
        )
        sock = config.bind_socket()
        listen.configure_keepalive(sock)  # accepted sockets inherit it
        _DrainingServer(config).run(sockets=[sock])


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, with SIGTERM turned into a drain (see the module docstring)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._drain is None and self._loop is not None:
            # A signal handler may run between any two bytecodes of the loop's thread:
            # hand the drain to the loop instead of starting it here.
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_then_exit(), name="drain")

    async def _drain_then_exit(self) -> None:
        lifecycle.mark_draining()
        for server in self.servers:  # new connections go to the other processes
            server.close()
        try:
            async with asyncio.timeout(settings.DRAIN_TIMEOUT):
                await lifecycle.run_drain_steps()
        except TimeoutError:  # the shutdown that follows closes the rest (1012)
            logger.warning("drain: clients still connected after %ss", settings.DRAIN_TIMEOUT)
        self.should_exit = True


def _serve_granian(host: str, port: int) -> None:
    """Granian (Rust HTTP/WebSocket front end, Python ASGI app): one worker = one process.

    It runs the app in a worker subprocess of its own; the ASGI app and Channels work
    unchanged (measured by ``python -m bench``, docs/performance.md).
    """
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    Server(
        "chatproject.asgi:application",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        websockets=True,
        log_level=LogLevels.warning,
    ).serve()
