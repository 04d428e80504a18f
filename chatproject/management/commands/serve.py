"""``manage.py serve``: migrate, then run the ASGI server and print the URL to open.

This is the one-process product: HTTP, WebSocket and static files from one server. In
production run several of these behind a load balancer (docs/operations.md).
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


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

        uvicorn.run(
            "chatproject.asgi:application",
            host=host,
            port=port,
            # The sans-I/O websockets implementation costs ~24% less CPU per frame than the
            # older "websockets" mode (measured on a prototype of this fan-out design).
            # Its send() waits while the peer does not read (transport flow control): the
            # consumers' bounded outboxes rely on that (chat/outbox.py).
            ws="websockets-sansio",
            ws_max_size=1_048_576,
            # Compression costs CPU on every frame; chat frames are small.
            ws_per_message_deflate=False,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            log_level="warning",
        )


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
