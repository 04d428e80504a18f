"""Sync queues are kept for a window (SYNC_RETENTION_DAYS); history forever. A device whose
cursor is older than the window gets a ``reset`` sync page (docs/protocol.md), reloads
over REST and continues from the page's ``last_seq`` without a gap."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from chat.services import retention
from chat.store import get_message_store
from chat.store.base import EventKind, NewEvent
from chat.store.models import SyncEntryRecord
from chatproject.celery import app

from .conftest import direct

pytestmark = pytest.mark.django_db(transaction=True)

UsersFactory = Callable[[int], list[User]]
TASK = "chat.prune_sync_queues"


def _age_entries(user: User, *, upto_seq: int, days: float) -> None:
    """Entries up to ``upto_seq`` as if written ``days`` ago (what a long absence leaves)."""
    SyncEntryRecord.objects.filter(user_id=user.pk, seq__lte=upto_seq).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def _prune_as_the_schedule_does() -> int:
    pruned: int = app.tasks[TASK].apply(throw=True).get()
    return pruned


def test_the_prune_task_is_in_the_beat_schedule_hourly_by_default(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["prune-sync-queues"]
    assert entry["task"] == TASK
    assert entry["schedule"] == settings.SYNC_PRUNE_INTERVAL_SECONDS == 3600.0
    assert settings.SYNC_RETENTION_DAYS == 30.0
    assert TASK in app.tasks


async def test_a_device_away_longer_than_the_window_is_reset_and_goes_on_live(
    users: UsersFactory, ws_devices: Any, api: APIClient
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1, b1 = await ws_devices(alice, "a1"), await ws_devices(bob, "b1")
    await a1.connect()
    await b1.connect()
    await a1.send_text(conversation_id, "seen")
    await b1.receive_type("message.new")
    away_at = b1.cursor
    await b1.disconnect()
    missed = [await a1.send_text(conversation_id, f"missed {i}") for i in range(3)]
    await adb(_age_entries)(bob, upto_seq=away_at + len(missed), days=31)

    pruned = await adb(_prune_as_the_schedule_does)()
    assert pruned >= len(missed) + 1  # bob's entries (and alice's of the same age)

    await b1.connect(sync=False)
    await b1.send({"type": "sync", "after": away_at, "ref": "back"})
    page = await b1.receive_type("sync.page")
    assert page["reset"] is True
    assert page["events"] == []
    assert page["has_more"] is False
    assert page["last_seq"] == away_at + len(missed)
    b1.cursor = page["last_seq"]  # what a client does after reloading over REST

    # History is kept forever: the reload over REST shows every missed message.
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {b1.token}")
    history = await adb(api.get)(f"/api/v1/conversations/{conversation_id}/messages")
    assert history.status_code == 200
    shown = {m["id"] for m in history.json()["results"]}
    assert {m["message_id"] for m in missed} <= shown

    # And the stream goes on from last_seq without a gap (WsDevice checks every seq).
    sent = await a1.send_text(conversation_id, "after the reset")
    live = await b1.receive_type("message.new")
    assert live["message"]["id"] == sent["message_id"]
    assert live["seq"] == page["last_seq"] + 1


async def test_a_cursor_at_the_edge_of_the_window_gets_its_events_not_a_reset(
    users: UsersFactory, ws_devices: Any, api: APIClient
) -> None:
    alice, bob = await adb(users)(2)
    conversation_id = await direct(alice, bob)
    a1 = await ws_devices(alice, "a1")
    await a1.connect()
    sent = [await a1.send_text(conversation_id, f"m{i}") for i in range(4)]
    newest = await adb(get_message_store().last_seq)(bob.pk)  # the last 4 are the messages
    edge = newest - 2
    await adb(_age_entries)(bob, upto_seq=edge, days=31)
    await adb(_prune_as_the_schedule_does)()

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {(await ws_devices(bob, 'b1')).token}")
    # Pruned up to the edge: a cursor there misses nothing and gets the last two ...
    kept = (await adb(api.get)("/api/v1/sync", {"after": edge})).json()
    assert kept["reset"] is False
    assert [e["seq"] for e in kept["events"]] == [edge + 1, edge + 2]
    assert [e["message"]["id"] for e in kept["events"]] == [m["message_id"] for m in sent[2:]]
    # ... a cursor before it would miss the edge's event: the same reset over REST as over
    # the socket.
    stale = (await adb(api.get)("/api/v1/sync", {"after": edge - 1})).json()
    assert stale == {"events": [], "last_seq": newest, "has_more": False, "reset": True}
    # Up to date: nothing to reset, nothing to send.
    current = (await adb(api.get)("/api/v1/sync", {"after": newest})).json()
    assert current == {"events": [], "last_seq": newest, "has_more": False, "reset": False}


def test_pruning_keeps_the_window_and_works_off_a_backlog_in_batches(
    make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user()
    store = get_message_store()
    for _ in range(7):
        store.append_events([NewEvent(user_id=user.pk, kind=EventKind.READ, conversation_id=1)])
    _age_entries(user, upto_seq=5, days=30.5)
    monkeypatch.setattr(retention, "PRUNE_BATCH", 2)  # 5 old entries: batches of 2, 2, 1

    assert retention.prune_sync_queues() == 5
    assert [e.seq for e in store.read_sync(user.pk, after_seq=0, limit=10)] == [6, 7]
    assert retention.prune_sync_queues() == 0
