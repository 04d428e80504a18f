"""The ack flusher: acks capped to what exists, stored once per slot, failures retried."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb

from accounts.models import User
from chat.connection import acks as acks_module
from chat.connection.acks import ACK_FLUSH_SECONDS, ACK_FLUSH_SLOTS, AckFlusher, seconds_to_slot
from chat.models import DeviceSyncState
from chat.services import sync as sync_service

from .conftest import device_of, messages_to, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def stored_cursor(device_id: int) -> int | None:
    state = DeviceSyncState.objects.filter(device_id=device_id).first()
    return None if state is None else state.delivered_seq


def test_every_device_flushes_on_its_slot_of_the_period() -> None:
    period = ACK_FLUSH_SECONDS / ACK_FLUSH_SLOTS
    ticks = set()
    for device_id in range(ACK_FLUSH_SLOTS * 2):
        wait = seconds_to_slot(device_id, now=123.04)
        assert 0 < wait <= ACK_FLUSH_SECONDS
        tick = round((123.04 + wait) % ACK_FLUSH_SECONDS / period) % ACK_FLUSH_SLOTS
        assert tick == device_id % ACK_FLUSH_SLOTS
        ticks.add(tick)
    assert len(ticks) == ACK_FLUSH_SLOTS


class _CountedBatches:
    """The real acknowledge_many, with the batches it was given recorded (and optionally
    a first failure, as when the database is briefly unreachable)."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.batches: list[list[sync_service.Ack]] = []
        self.stored = 0
        self._fail = fail_first

    def __call__(self, batch: list[sync_service.Ack]) -> Any:
        self.batches.append(batch)
        if self._fail:
            self._fail = False
            raise ConnectionError("database unreachable")
        outcome = sync_service.acknowledge_many(batch)
        self.stored += 1
        return outcome


async def test_acks_are_capped_to_the_newest_seq_and_stored_once_per_slot(
    make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = _CountedBatches()
    monkeypatch.setattr(acks_module._ack_coalesced, "batch_function", counted)
    user, sender = await adb(make_user)(), await adb(make_user)()
    device_id = await device_of(user)
    await messages_to(user, sender, 2)
    newest = (await adb(sync_service.sync_page)(user.pk, after_seq=0, limit=500)).last_seq
    flusher = AckFlusher(user_id=user.pk, device_id=device_id, delivered_seq=0)

    loop = asyncio.get_running_loop()
    due = loop.time() + seconds_to_slot(device_id, loop.time())
    for seq in (1, 2, 10**9):
        flusher.ack(seq, newest_seq=newest)
    assert flusher.acked == newest
    await wait_for(lambda: counted.stored == 1, timeout=ACK_FLUSH_SECONDS * 3)

    assert loop.time() >= due - 0.05  # on the device's slot, not at once
    assert counted.batches == [[sync_service.Ack(user.pk, device_id, newest, 0)]]
    assert await adb(stored_cursor)(device_id) == newest
    await flusher.stop()
    assert len(counted.batches) == 1  # nothing new to store on stop


async def test_a_failed_flush_is_logged_and_stored_again_by_the_next(
    make_user: Callable[..., User],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted = _CountedBatches(fail_first=True)
    monkeypatch.setattr(acks_module._ack_coalesced, "batch_function", counted)
    user = await adb(make_user)()
    device_id = await device_of(user)
    flusher = AckFlusher(user_id=user.pk, device_id=device_id, delivered_seq=2)

    flusher.ack(4, newest_seq=9)
    await flusher.flush()
    assert "storing the delivery cursor failed" in caplog.text
    flusher.ack(6, newest_seq=9)
    await flusher.stop()  # a disconnect stores at once

    assert [batch[0] for batch in counted.batches] == [
        sync_service.Ack(user.pk, device_id, 4, 2),
        sync_service.Ack(user.pk, device_id, 6, 2),  # the failed range again
    ]
