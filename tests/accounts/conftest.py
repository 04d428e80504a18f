"""Accounts test fixtures.

Revoking a device must also close its live sockets: accounts.services calls
``chat.realtime.disconnect_devices`` after the revocation commits. The ``disconnects``
fixture records those calls (and still makes them) so tests can assert which devices were
cut off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from chat import realtime


@dataclass
class DisconnectCalls:
    calls: list[tuple[int, list[int]]] = field(default_factory=list)

    def devices_closed(self) -> set[int]:
        return {device_id for _user, ids in self.calls for device_id in ids}


@pytest.fixture(autouse=True)
def disconnects(monkeypatch: pytest.MonkeyPatch) -> DisconnectCalls:
    recorder = DisconnectCalls()
    real = realtime.disconnect_devices

    def recording(*, user_id: int, device_ids: Sequence[int]) -> None:
        recorder.calls.append((user_id, sorted(device_ids)))
        real(user_id=user_id, device_ids=device_ids)

    monkeypatch.setattr(realtime, "disconnect_devices", recording)
    return recorder


# Sockets through the real ASGI application, shared with the chat tests.
from tests.chat.conftest import ws_devices  # noqa: E402, F401
