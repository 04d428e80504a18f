"""Typed task payloads (and the previous release's positional shape, still accepted), and
pruning of old delivery claims as a periodic task: celery beat in production, a timer in
the server process embedded."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from chatproject.celery import app
from notifications import runner
from notifications.models import PushDelivery, PushRegistration
from notifications.task_payloads import (
    NewMessagePush,
    NewMessagesPush,
    PruneDeliveries,
    SendBatch,
    SendItem,
)

from .conftest import Phone, settle
from .receivers import PushServices

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:Message.token is deprecated"),
]

PhoneFactory = Callable[..., Phone]
BEAT_ENTRY = "prune-push-deliveries"


def _wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)


def _queue_as_the_previous_release_did(task_name: str, args: list[Any]) -> None:
    """Positional list arguments, as tasks already in the broker during an upgrade."""
    if django_settings.CELERY_BROKER_URL:
        app.send_task(task_name, args=args)
    else:
        app.tasks[task_name].apply(args=tuple(args), throw=True)


def test_payloads_round_trip_through_json() -> None:
    batch = NewMessagesPush((NewMessagePush(1, 2, (3, 4)), NewMessagePush(5, 2, (3,))))
    sent = json.loads(json.dumps(batch.to_json()))
    assert NewMessagesPush.from_json(sent["batch"]) == batch
    send = SendBatch("fcm", (SendItem(7, None, {"type": "clear"}), SendItem(8, 9, {})), 2)
    assert SendBatch.from_json(**json.loads(json.dumps(send.to_json()))) == send


def test_the_previous_releases_list_shapes_are_read_as_the_same_payloads() -> None:
    assert NewMessagesPush.from_json([[1, 2, [3, 4]]]) == NewMessagesPush(
        (NewMessagePush(1, 2, (3, 4)),)
    )
    assert SendItem.from_json([7, None, {"type": "clear"}]) == SendItem(7, None, {"type": "clear"})


def test_a_push_queued_by_the_previous_release_is_still_delivered(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice = phone("alice")
    bob = phone("bob", "browser", platform="web")
    conversation_id = alice.direct_with(bob.user)
    message_id = alice.send(conversation_id, "sent before the upgrade")
    settle()  # its own push task found no registration of bob's: nothing claimed
    bob.register_webpush(push_env.new_subscription("bob-web"))

    _queue_as_the_previous_release_did(
        NewMessagesPush.task_name, [[[message_id, conversation_id, [bob.user.pk]]]]
    )

    got = push_env.wait_for(lambda got: len(got) == 1)
    assert got[0].target == "bob-web"
    assert got[0].payload["message_id"] == str(message_id)


def _old_and_new_claims(phone: PhoneFactory) -> tuple[int, int]:
    device = phone("carol")
    registration = PushRegistration.objects.create(
        device_id=device.device_id,
        user=device.user,
        kind="fcm",
        address="fcm-token-carol",
        address_hash=f"carol-{device.device_id}",
    )
    old, new = (
        PushDelivery.objects.create(registration=registration, message_id=i, claim="t")
        for i in (1, 2)
    )
    expired = timezone.now() - timedelta(hours=django_settings.PUSH_DELIVERY_RETENTION_HOURS + 1)
    PushDelivery.objects.filter(pk=old.pk).update(created_at=expired)
    return old.pk, new.pk


def test_pruning_is_in_the_beat_schedule_hourly_by_default() -> None:
    entry = app.conf.beat_schedule[BEAT_ENTRY]
    assert entry["task"] == PruneDeliveries.task_name
    assert entry["schedule"] == django_settings.PUSH_PRUNE_INTERVAL_SECONDS == 3600.0
    assert PruneDeliveries.task_name in app.tasks


def test_the_periodic_task_forgets_only_expired_claims(phone: PhoneFactory) -> None:
    """In production the task runs in the real worker (as beat would queue it)."""
    old, new = _old_and_new_claims(phone)
    runner.enqueue(PruneDeliveries())
    _wait_until(lambda: not PushDelivery.objects.filter(pk=old).exists())
    assert PushDelivery.objects.filter(pk=new).exists()


def test_embedded_a_timer_in_the_server_process_prunes(phone: PhoneFactory, settings: Any) -> None:
    if settings.CELERY_BROKER_URL:
        pytest.skip("production runs the schedule with celery beat")
    old, new = _old_and_new_claims(phone)
    entry = app.conf.beat_schedule[BEAT_ENTRY]
    settings.CELERY_BEAT_SCHEDULE = {BEAT_ENTRY: {**entry, "schedule": 0.2}}
    runner.start_embedded_schedule()  # what the first push task of the process does
    _wait_until(lambda: not PushDelivery.objects.filter(pk=old).exists())
    assert PushDelivery.objects.filter(pk=new).exists()
    assert runner.wait_for_idle(15)
