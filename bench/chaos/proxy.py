"""TCP proxies on 127.0.0.1 that the fault runner can cut and restore.

Every chat server and the Celery worker reach PostgreSQL and Redis through a proxy of
their own, so one process can be partitioned from one service while the others carry on.
All proxies of a cluster share one asyncio loop on a background thread (``ProxyHub``);
their methods are called from any other thread and return once the change is in effect.

Two ways to cut:

* ``reset``: every open connection is reset (RST, as when a firewall rejects) and new
  ones are reset as soon as they are accepted: clients see errors at once.
* ``blackhole``: a partition. Open connections stop forwarding in both directions (bytes
  wait in the proxy, as in a retransmitting TCP stack) and new connections are accepted
  but never reach the service: clients see only silence until their own timeouts. On
  ``restore()`` held connections carry on where they stopped.

Upstreams are on loopback only. A proxy listens on 127.0.0.1 unless given another
address, which must be a private one of this machine (e.g. the host side of a test's
virtual network, tests/e2e/netns.py): no traffic ever reaches a public network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

CutMode = Literal["reset", "blackhole"]
CUT_MODES: tuple[CutMode, ...] = ("reset", "blackhole")
_CHUNK = 65536
_T = TypeVar("_T")


def _require_loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host} is not a loopback address: the proxies stay on 127.0.0.0/8")


def _require_private(host: str) -> None:
    address = ipaddress.ip_address(host)
    if not (address.is_loopback or address.is_private):
        raise ValueError(f"{host} is not a loopback or private address")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (linger 0), not FIN: what a refused or broken path looks like."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def reset(self) -> None:
        for task in self.tasks:
            task.cancel()
        _reset(self.client)
        if self.upstream is not None:
            _reset(self.upstream)


class Proxy:
    """One listening port forwarding to one upstream port, both on loopback."""

    def __init__(
        self, hub: ProxyHub, upstream_port: int, upstream_host: str, listen_host: str = "127.0.0.1"
    ) -> None:
        _require_loopback(upstream_host)
        _require_private(listen_host)
        self.listen_host = listen_host
        self._hub = hub
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        self.mode: CutMode | None = None  # None: forwarding
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self.accepted = 0  # connections accepted since start (for tests and reports)

    @property
    def cut_active(self) -> bool:
        return self.mode is not None

    @property
    def open_connections(self) -> int:
        """Connections forwarded or held right now (closed once either side closes)."""
        return len(self._connections)

    def cut(self, mode: CutMode = "reset") -> None:
        if mode not in CUT_MODES:
            raise ValueError(f"unknown cut mode {mode!r}; one of {CUT_MODES}")
        self._hub.call(self._cut(mode))

    def restore(self) -> None:
        self._hub.call(self._restore())

    def close(self) -> None:
        self._hub.call(self._close())

    # --- on the hub's loop --------------------------------------------------------------
    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen_host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _cut(self, mode: CutMode) -> None:
        self.mode = mode
        self._flowing.clear()
        if mode == "reset":
            for connection in list(self._connections):
                connection.reset()
            self._connections.clear()

    async def _restore(self) -> None:
        self.mode = None
        self._flowing.set()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.reset()
        self._connections.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "reset":
            _reset(writer)
            return
        connection = _Connection(client=writer)
        self._connections.add(connection)
        try:
            # A blackholed connection is held here: accepted, never connected upstream.
            await self._flowing.wait()
            if writer.is_closing():
                return
            up_reader, connection.upstream = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            self._connections.discard(connection)
            _reset(writer)
            return
        connection.tasks = [
            asyncio.ensure_future(self._pump(reader, connection.upstream, connection)),
            asyncio.ensure_future(self._pump(up_reader, writer, connection)),
        ]

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await source.read(_CHUNK)
                # Bytes read just before a blackhole cut wait here until the restore.
                await self._flowing.wait()
                if not data:
                    break
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if connection in self._connections:
                self._connections.discard(connection)
                connection.reset()


class ProxyHub:
    """The loop thread that runs a set of proxies; a context manager."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="chaos-proxies", daemon=True
        )
        self._thread.start()
        self.proxies: list[Proxy] = []

    def call(self, coroutine: Coroutine[Any, Any, _T], timeout: float = 10.0) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def add(
        self, upstream_port: int, upstream_host: str = "127.0.0.1", listen_host: str = "127.0.0.1"
    ) -> Proxy:
        """A new proxy to ``upstream_host:upstream_port``, on a free port of ``listen_host``."""

        async def create() -> Proxy:
            proxy = Proxy(self, upstream_port, upstream_host, listen_host)
            await proxy._listen()
            return proxy

        proxy = self.call(create())
        self.proxies.append(proxy)
        return proxy

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.close()
        self.proxies.clear()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> ProxyHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
