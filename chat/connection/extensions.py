"""The extension point through which apps built on chat (presence) join every connection.

Chat sits below them in the dependency direction, so it cannot import them. An app
registers, from its ``AppConfig.ready()``, a factory that makes one
:class:`ConnectionExtension` per authenticated connection, and the client and server
frames that extension adds to the protocol. Without a registered extension, connections
work as before, with chat's own frames only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chat import protocol


class ExtensionHost(Protocol):
    """What a connection offers its extensions."""

    user_id: int
    device_id: int

    def send_bytes(self, data: bytes) -> None:
        """Queue a serialized frame for the device (never waits for it)."""

    async def close_silent(self) -> None:
        """Close the connection because no frame came within the heartbeat timeout."""

    async def close_revoked(self) -> None:
        """Close the connection because the device was revoked or its user deactivated."""


class ConnectionExtension(Protocol):
    """One connection's share of an extension, made before the connection is registered
    with the hub (so that it already filters the events that arrive meanwhile)."""

    async def start(self) -> None:
        """After the connection is registered; must not raise (log instead)."""

    async def stop(self) -> None:
        """On close and again on disconnect: must be idempotent and must not raise."""

    def touch(self) -> None:
        """Every frame the client sends, before anything else; no I/O."""

    def accepts(self, frame: bytes) -> bool:
        """Whether an ephemeral frame (no ``seq``) from the hub goes to the device now."""

    async def handle(self, frame: protocol.BaseClientFrame) -> None:
        """One of the extension's client frames; ServiceErrors become error frames."""


ExtensionFactory = Callable[[ExtensionHost], ConnectionExtension]


@dataclass(frozen=True)
class Extension:
    name: str
    factory: ExtensionFactory
    client_frame_types: frozenset[str]


_extensions: dict[str, Extension] = {}


def register_extension(
    name: str,
    factory: ExtensionFactory,
    *,
    client_frames: Sequence[type[protocol.BaseClientFrame]] = (),
    server_frames: Sequence[type[Any]] = (),
) -> None:
    """Join every connection opened from now on; registering ``name`` again replaces it."""
    protocol.register_frames(client=client_frames, server=server_frames)
    types = frozenset(protocol.frame_type(model) for model in client_frames)
    _extensions[name] = Extension(name, factory, types)


def registered_extensions() -> list[Extension]:
    return list(_extensions.values())
