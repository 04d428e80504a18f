"""The runner's TCP proxy: forwards, and a cut stops traffic until restore (both modes).

Against a local echo server, no cluster: runs on both configurations.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from bench.chaos.proxy import Proxy, ProxyHub
from bench.chaos.services import wait_until

# How long silence must last to count as "nothing came through" (a blackhole never answers).
SILENCE = 0.5


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(4096):
                self.request.sendall(data)
        except ConnectionError:
            pass  # the proxy reset it: that is what the tests do


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo_port: int) -> Iterator[Proxy]:
    with ProxyHub() as hub:
        yield hub.add(echo_port)


def connect(proxy: Proxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=5)


def echoes(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def is_dropped(sock: socket.socket) -> bool:
    """The connection is dead: the send or the read fails (RST), or the read sees the end."""
    try:
        return echoes(sock) == b""
    except ConnectionError:  # reset, or a broken pipe when the RST came before the send
        return True


def new_connection_is_dropped(proxy: Proxy) -> bool:
    """Accepted by the kernel, then reset by the proxy (the RST may beat the connect's
    return)."""
    try:
        sock = connect(proxy)
    except ConnectionError:
        return True
    with sock:
        return is_dropped(sock)


def is_silent(sock: socket.socket) -> bool:
    sock.settimeout(SILENCE)
    try:
        sock.recv(4096)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(5)
    return False


def test_forwards_both_ways(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        assert echoes(sock, b"hello") == b"hello"
        assert proxy.open_connections == 1
    assert proxy.accepted == 1
    wait_until(lambda: proxy.open_connections == 0, "the proxy kept a closed connection", 5)


def test_reset_drops_open_connections_and_new_ones_until_restore(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        assert echoes(sock) == b"ping"
        proxy.cut("reset")
        assert is_dropped(sock)
    assert new_connection_is_dropped(proxy)
    proxy.restore()
    with connect(proxy) as sock:
        assert echoes(sock) == b"ping"


def test_blackhole_holds_traffic_silently_and_restore_delivers_it(proxy: Proxy) -> None:
    held = connect(proxy)
    assert echoes(held) == b"ping"
    proxy.cut("blackhole")
    held.sendall(b"during the partition")
    assert is_silent(held)  # not reset either: a partition, not a refusal
    late = connect(proxy)  # still accepted, never forwarded
    late.sendall(b"new")
    assert is_silent(late)
    proxy.restore()
    assert held.recv(4096) == b"during the partition"
    assert late.recv(4096) == b"new"
    held.close()
    late.close()


def test_only_loopback_upstreams() -> None:
    with ProxyHub() as hub, pytest.raises(ValueError, match="loopback"):
        hub.add(80, upstream_host="192.0.2.1")


def test_only_loopback_or_private_listen_addresses() -> None:
    with ProxyHub() as hub, pytest.raises(ValueError, match="private"):
        hub.add(80, listen_host="8.8.8.8")


def test_unknown_cut_mode_is_refused(proxy: Proxy) -> None:
    with pytest.raises(ValueError, match="cut mode"):
        proxy.cut("drop")  # type: ignore[arg-type]
