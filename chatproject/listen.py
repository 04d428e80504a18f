"""The listening socket of ``manage.py serve``, with the kernel watching for dead networks.

A phone that loses its network (a tunnel, a dead battery, a NAT that forgot the mapping)
sends no FIN: without help its socket stays open on the server, and the user stays online
for their watchers, until the heartbeat timeout (``PRESENCE_TIMEOUT``, 60 s). WebSocket
protocol pings find it sooner but cost the process a frame out and a frame in per socket
per interval (~3.8% of a core for 10,000 idle sockets every 20 s, docs/performance.md).
TCP keepalive finds it at no cost to the process: the kernel probes a socket after
``TCP_KEEPALIVE_IDLE`` seconds without traffic, every ``TCP_KEEPALIVE_INTERVAL`` seconds,
and resets it after ``TCP_KEEPALIVE_COUNT`` unanswered probes; ``TCP_USER_TIMEOUT`` (the
same total) resets a socket whose sent data stays unacknowledged that long, the case
keepalive does not cover. The server then sees the connection lost, and the device goes
offline at once, as on any close. Linux copies these options from the listening socket to
every socket it accepts, so they are set once, here.
"""

from __future__ import annotations

import socket

from django.conf import settings


def configure_keepalive(sock: socket.socket) -> None:
    """Keepalive and user timeout from the settings (a no-op when ``TCP_KEEPALIVE_IDLE`` is 0
    or the platform lacks the options)."""
    idle = settings.TCP_KEEPALIVE_IDLE
    if idle <= 0 or not hasattr(socket, "TCP_KEEPIDLE"):
        return
    interval, count = settings.TCP_KEEPALIVE_INTERVAL, settings.TCP_KEEPALIVE_COUNT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        # Milliseconds; with keepalive on, it also bounds the probes (tcp(7)).
        sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, (idle + interval * count) * 1000
        )
