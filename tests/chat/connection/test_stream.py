"""The device stream: gap-free, ordered, exactly once; gaps filled from the sync queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async as adb
from django.utils import timezone

from accounts.models import User
from chat.connection import stream as stream_module
from chat.connection.stream import GAP_FILL_DELAY_SECONDS, DeviceStream
from chat.services import retention
from chat.services import sync as sync_service
from chat.store.models import SyncEntryRecord

from .conftest import Written, messages_to, wait_for


def frame(seq: int, **fields: Any) -> bytes:
    return orjson.dumps({"seq": seq, "type": "message.new", **fields})


def live_stream(
    written: Written, *, user_id: int = 1, live_writes: list[int] | None = None
) -> DeviceStream:
    on_live_write = live_writes.append if live_writes is not None else (lambda seq: None)
    stream = DeviceStream(user_id=user_id, newest_seq=0, write=written, on_live_write=on_live_write)
    stream.synced(0, has_more=False)
    return stream


async def test_out_of_order_events_are_written_in_order_once() -> None:
    written, live_writes = Written(), list[int]()
    stream = live_stream(written, live_writes=live_writes)

    for seq in (3, 2, 1, 2, 4, 1):
        stream.deliver(seq, frame(seq))

    assert written.seqs == [1, 2, 3, 4]
    assert stream.cursor == stream.newest_seq == 4
    assert live_writes == [3, 4]  # the unacked timer hears the cursor after each live write
    stream.stop()


async def test_before_the_last_sync_page_events_wait_and_stale_ones_are_dropped() -> None:
    written = Written()
    stream = DeviceStream(user_id=1, newest_seq=0, write=written, on_live_write=lambda s: None)
    for seq in (1, 2, 3):
        stream.deliver(seq, frame(seq))
    assert written.raw == []

    stream.synced(2, has_more=True)  # more pages to come: still not live
    assert written.raw == []
    stream.synced(2, has_more=False)  # the page held 1 and 2

    assert written.seqs == [3]
    assert stream.live
    assert stream.cursor == 3


async def test_events_held_before_live_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "PENDING_LIMIT", 3)
    written = Written()
    stream = DeviceStream(user_id=1, newest_seq=0, write=written, on_live_write=lambda s: None)
    for seq in range(1, 7):
        stream.deliver(seq, frame(seq))

    stream.synced(0, has_more=False)

    assert written.seqs == [1, 2, 3]  # the rest is in the sync queue
    assert stream.newest_seq == 6  # but acks may go that far
    stream.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_gap_is_read_from_the_sync_queue_after_the_delay(
    make_user: Callable[..., User],
) -> None:
    alice, bob = await adb(make_user)(), await adb(make_user)()
    ids = await messages_to(bob, alice, 3)
    newest = (await adb(sync_service.sync_page)(bob.pk, after_seq=0, limit=500)).last_seq
    written = Written()
    stream = live_stream(written, user_id=bob.pk)
    held = orjson.dumps({"seq": newest, "type": "sent", "held": True})
    loop = asyncio.get_running_loop()
    started = loop.time()

    stream.deliver(newest, held)  # everything before it never arrives live
    assert written.raw == []
    await wait_for(lambda: len(written.raw) == newest)

    assert loop.time() - started >= GAP_FILL_DELAY_SECONDS * 0.9
    assert written.seqs == list(range(1, newest + 1))
    *read_back, last = written.frames
    assert last == {"seq": newest, "type": "sent", "held": True}  # the held frame, not the page's
    read_ids = [frame["message"]["id"] for frame in read_back if frame["type"] == "message.new"]
    assert read_ids == ids[:2]
    assert stream.cursor == newest
    stream.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_gap_whose_events_were_pruned_gets_the_reset_page_and_goes_on_live(
    make_user: Callable[..., User],
) -> None:
    alice, bob = await adb(make_user)(), await adb(make_user)()
    await messages_to(bob, alice, 3)
    newest = (await adb(sync_service.sync_page)(bob.pk, after_seq=0, limit=500)).last_seq
    # Everything before the newest entry is older than the window, and pruned.
    await adb(SyncEntryRecord.objects.filter(user_id=bob.pk, seq__lt=newest).update)(
        created_at=timezone.now() - timedelta(days=31)
    )
    await adb(retention.prune_sync_queues)()
    written = Written()
    stream = live_stream(written, user_id=bob.pk)

    stream.deliver(newest, frame(newest))  # what came before it never arrives live
    await wait_for(lambda: len(written.raw) == 1)

    assert written.frames == [
        {
            "type": "sync.page",
            "ref": None,
            "events": [],
            "last_seq": newest,
            "has_more": False,
            "reset": True,
        }
    ]
    assert stream.cursor == newest
    stream.deliver(newest + 1, frame(newest + 1))  # and the stream goes on from there
    assert written.frames[-1]["seq"] == newest + 1
    stream.stop()
