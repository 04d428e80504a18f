"""Push notifications end to end: a message is sent over the REST API, the notification
service decides, and the local push services (tests/notifications/receivers.py) receive,
authenticate and decrypt what a phone or a browser would. On the production configuration
the tasks run in a real Celery worker process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError, connection

from notifications import providers, sending
from notifications import services as push_service
from notifications.models import PushDelivery, PushRegistration
from notifications.task_payloads import NewMessagePush, SendBatch, SendItem

from .conftest import Phone, settle
from .receivers import PushServices, Received

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # firebase-admin 7.7 prefers installation ids (fid); apps hand us registration tokens.
    pytest.mark.filterwarnings("ignore:Message.token is deprecated"),
]

PhoneFactory = Callable[..., Phone]


def _kinds(pushes: list[Received], target: str) -> list[str]:
    return [p.payload["type"] for p in pushes if p.target == target]


def test_offline_recipient_gets_the_documented_payload_on_browser_and_phone(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice = phone("alice")
    alice.register_webpush(push_env.new_subscription("alice-web"))  # the sender: never pushed
    bob_web = phone("bob", "browser", platform="web")
    bob_phone = phone(bob_web.user, "pixel")
    bob_web.register_webpush(push_env.new_subscription("bob-web"))
    bob_phone.register_fcm("fcm-token-bob")
    conversation_id = alice.direct_with(bob_web.user)

    message_id = alice.send(conversation_id, "Lunch at noon?")

    pushes = push_env.wait_for(lambda got: len(got) >= 2)
    expected = {
        "v": 1,
        "type": "message",
        "conversation_id": conversation_id,
        "conversation_kind": "direct",
        "conversation_name": "",
        "sender_id": alice.user.pk,
        "sender_name": "Alice",
        "message_id": str(message_id),
        "preview": "Lunch at noon?",
        "title": "Alice",
        "body": "Lunch at noon?",
        "badge": 1,
        "tag": f"conv-{conversation_id}",
    }
    web = next(p for p in pushes if p.target == "bob-web")
    assert web.payload == expected  # decrypted with the browser's private key
    assert web.headers["topic"] == f"conv-{conversation_id}"
    assert web.headers["urgency"] == "high"

    fcm = next(p for p in pushes if p.target == "fcm-token-bob")
    assert fcm.payload == {k: str(v) for k, v in expected.items()}  # FCM data: strings only
    message = fcm.body["message"]
    assert message["notification"] == {"title": "Alice", "body": "Lunch at noon?"}
    assert message["android"]["collapse_key"] == f"conv-{conversation_id}"
    assert message["android"]["notification"]["tag"] == f"conv-{conversation_id}"
    assert message["apns"]["payload"]["aps"]["badge"] == 1
    assert push_env.token_requests >= 1  # firebase-admin got its token from the OAuth endpoint

    settle()
    assert [p.target for p in push_env.pushes()].count("alice-web") == 0
    assert len(push_env.pushes()) == 2


def test_group_push_names_the_group_and_the_badge_counts_every_unread_message(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice, bob, carol = phone("alice"), phone("bob"), phone("carol")
    bob.register_webpush(push_env.new_subscription("bob-web"))
    group = alice.api.post(
        "/api/v1/conversations",
        {"kind": "group", "name": "Climbing", "member_ids": [bob.user.pk, carol.user.pk]},
        format="json",
    ).json()["id"]
    direct = carol.direct_with(bob.user)

    alice.send(group, "Saturday 9am at the wall")
    push_env.wait_for(lambda got: len(got) == 1)
    carol.send(direct, "Are you coming?")
    pushes = push_env.wait_for(lambda got: len(got) == 2)

    by_text = {p.payload["preview"]: p.payload for p in pushes}
    assert by_text["Saturday 9am at the wall"]["title"] == "Climbing"
    assert by_text["Saturday 9am at the wall"]["body"] == "Alice: Saturday 9am at the wall"
    assert by_text["Saturday 9am at the wall"]["badge"] == 1
    assert by_text["Are you coming?"]["badge"] == 2  # unread over all of Bob's conversations
    assert by_text["Are you coming?"]["tag"] != by_text["Saturday 9am at the wall"]["tag"]


def test_every_message_of_a_group_commit_batch_is_pushed(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    from chat.services import messages

    alice, bob, carol = phone("alice"), phone("bob"), phone("carol")
    bob.register_webpush(push_env.new_subscription("bob-web"))
    from_alice, from_carol = alice.direct_with(bob.user), carol.direct_with(bob.user)

    outcomes = messages.send_messages(
        [
            messages.SendRequest(alice.user.pk, from_alice, "a1", "from Alice"),
            messages.SendRequest(carol.user.pk, from_carol, "c1", "from Carol"),
            messages.SendRequest(alice.user.pk, from_alice, "a2", "Alice again"),
        ]
    )

    assert all(isinstance(o, messages.SendResult) for o in outcomes)
    pushes = push_env.wait_for(lambda got: len(got) == 3)
    assert sorted(p.payload["preview"] for p in pushes) == [
        "Alice again",
        "from Alice",
        "from Carol",
    ]


def test_muted_conversation_and_do_not_disturb_suppress_pushes_previews_can_be_hidden(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice, bob, carol = phone("alice"), phone("bob"), phone("carol")
    bob.register_webpush(push_env.new_subscription("bob-web"))
    from_alice = alice.direct_with(bob.user)
    from_carol = carol.direct_with(bob.user)

    assert bob.api.patch(
        f"/api/v1/conversations/{from_alice}", {"muted": True}, format="json"
    ).json()["muted"]
    alice.send(from_alice, "muted chatter")
    carol.send(from_carol, "control: not muted")
    push_env.wait_for(lambda got: any(p.payload["preview"] == "control: not muted" for p in got))
    settle()
    assert [p.payload["preview"] for p in push_env.pushes()] == ["control: not muted"]

    response = bob.api.patch("/api/v1/push/settings", {"do_not_disturb": True}, format="json")
    assert response.json() == {"do_not_disturb": True, "show_preview": True}
    carol.send(from_carol, "while you sleep")
    settle()
    assert len(push_env.pushes()) == 1

    bob.api.patch(
        "/api/v1/push/settings", {"do_not_disturb": False, "show_preview": False}, format="json"
    )
    carol.send(from_carol, "my secret plan")
    pushes = push_env.wait_for(lambda got: len(got) == 2)
    private = pushes[-1].payload
    assert private["preview"] is None
    assert private["body"] == "New message"
    assert "secret" not in str(private)


def test_reading_on_one_device_clears_the_notification_on_the_others(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice, carol = phone("alice"), phone("carol")
    bob_web = phone("bob", "browser", platform="web")
    bob_phone = phone(bob_web.user, "pixel")
    bob_web.register_webpush(push_env.new_subscription("bob-web"))
    bob_phone.register_fcm("fcm-token-bob")
    conversation_id = alice.direct_with(bob_web.user)
    carol.send(carol.direct_with(bob_web.user), "unrelated, stays unread")
    alice.send(conversation_id, "first")
    last = alice.send(conversation_id, "second")
    push_env.wait_for(lambda got: len(got) == 6)
    bob_tablet = phone(bob_web.user, "tablet", platform="web")  # shows no notification
    bob_tablet.register_webpush(push_env.new_subscription("bob-tablet"))

    response = bob_phone.api.post(
        f"/api/v1/conversations/{conversation_id}/read", {"message_id": last}, format="json"
    )
    assert response.json()["unread_count"] == 0

    pushes = push_env.wait_for(
        lambda got: all("clear" in _kinds(got, t) for t in ("bob-web", "fcm-token-bob"))
    )
    web_clear = next(p for p in pushes if p.target == "bob-web" and p.payload["type"] == "clear")
    assert web_clear.payload == {
        "v": 1,
        "type": "clear",
        "conversation_id": conversation_id,
        "last_read_id": str(last),
        "badge": 1,  # Carol's message is still unread
        "tag": f"conv-{conversation_id}",
    }
    fcm_clear = next(
        p for p in pushes if p.target == "fcm-token-bob" and p.payload["type"] == "clear"
    )
    assert fcm_clear.payload["badge"] == "1"
    assert "notification" not in fcm_clear.body["message"]  # silent: nothing is shown
    assert fcm_clear.body["message"]["apns"]["payload"]["aps"]["content-available"] == 1
    settle()
    # Nothing for the device that shows nothing of it, and one clear per device only.
    assert [p.target for p in push_env.pushes() if p.payload["type"] == "clear"].count(
        "bob-web"
    ) == 1
    assert push_env.pushes("bob-tablet") == []


def test_dead_registrations_are_removed_on_410_and_unregistered(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice = phone("alice")
    bob_web = phone("bob", "browser", platform="web")
    bob_phone = phone(bob_web.user, "pixel")
    bob_web.register_webpush(push_env.new_subscription("bob-web"))
    bob_phone.register_fcm("fcm-token-bob")
    push_env.fail_next("bob-web", (410, None))
    push_env.fail_next("fcm-token-bob", (404, None))  # FCM: UNREGISTERED
    conversation_id = alice.direct_with(bob_web.user)

    alice.send(conversation_id, "are you there?")

    _wait_until(lambda: bob_web.api.get("/api/v1/push/registrations").json() == [])
    alice.send(conversation_id, "hello?")
    settle()
    assert push_env.pushes() == []
    assert len(push_env.attempts["bob-web"]) == 1
    assert len(push_env.attempts["fcm-token-bob"]) == 1


def test_unavailable_push_service_is_retried_then_delivered_once(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice = phone("alice")
    bob_web = phone("bob", "browser", platform="web")
    bob_phone = phone(bob_web.user, "pixel")
    bob_web.register_webpush(push_env.new_subscription("bob-web"))
    bob_phone.register_fcm("fcm-token-bob")
    push_env.fail_next("bob-web", (503, None), (503, None))
    push_env.fail_next("fcm-token-bob", (503, None))
    conversation_id = alice.direct_with(bob_web.user)

    alice.send(conversation_id, "third time lucky")

    push_env.wait_for(lambda got: len(got) == 2)
    settle()
    assert sorted(p.target for p in push_env.pushes()) == ["bob-web", "fcm-token-bob"]
    assert len(push_env.attempts["bob-web"]) == 3
    assert len(push_env.attempts["fcm-token-bob"]) == 2
    assert bob_web.api.get("/api/v1/push/registrations").json() != []  # 503 prunes nothing


def test_rate_limited_push_waits_for_retry_after(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice = phone("alice")
    bob_web = phone("bob", "browser", platform="web")
    bob_phone = phone(bob_web.user, "pixel")
    bob_web.register_webpush(push_env.new_subscription("bob-web"))
    bob_phone.register_fcm("fcm-token-bob")
    push_env.fail_next("bob-web", (429, "2"))
    push_env.fail_next("fcm-token-bob", (429, "1"))
    conversation_id = alice.direct_with(bob_web.user)

    alice.send(conversation_id, "not so fast")

    push_env.wait_for(lambda got: len(got) == 2)
    web_first, web_second = push_env.attempts["bob-web"]
    fcm_first, fcm_second = push_env.attempts["fcm-token-bob"]
    # The backoff alone would retry after ~0.2 s; the services asked for 2 s and 1 s.
    assert web_second - web_first >= 1.9
    assert fcm_second - fcm_first >= 0.9


def test_one_message_is_never_pushed_twice_to_a_device(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    alice = phone("alice")
    bob_web = phone("bob", "browser", platform="web")
    bob_phone = phone(bob_web.user, "pixel")
    bob_web.register_webpush(push_env.new_subscription("bob-web"))
    bob_phone.register_fcm("fcm-token-bob")
    conversation_id = alice.direct_with(bob_web.user)
    message_id = alice.send(conversation_id, "only once")
    push_env.wait_for(lambda got: len(got) == 2)

    # The same decision again, as a redelivered or duplicated task would make it, and the
    # unacknowledged-device path for the same message: nothing new may reach the devices.
    again = NewMessagePush(message_id, conversation_id, (bob_web.user.pk,))
    push_service.enqueue(again)
    push_service.enqueue(again)
    push_service.device_unacked(
        user_id=bob_web.user.pk, device_id=bob_phone.device_id, acked_seq=0, delivered_seq=10
    )
    settle()
    assert sorted(p.target for p in push_env.pushes()) == ["bob-web", "fcm-token-bob"]


def test_a_push_accepted_as_the_database_fails_is_not_pushed_again_by_the_retry(
    phone: PhoneFactory, push_env: PushServices
) -> None:
    bob = phone("bob", "browser", platform="web")
    bob.register_webpush(push_env.new_subscription("bob-web"))
    registration = PushRegistration.objects.get(user=bob.user)
    delivery = PushDelivery.objects.create(registration=registration, message_id=42, claim="t")
    payload = {"v": 1, "type": "message", "message_id": "42", "tag": "conv-1", "body": "hi"}
    batch = SendBatch("webpush", (SendItem(registration.pk, delivery.pk, payload),), attempt=1)

    def database_gone_once_accepted(execute: Any, sql: str, *args: Any) -> Any:
        if sql.startswith("UPDATE") and "sent_at" in sql:
            raise OperationalError("the database went away")  # as a restart would
        return execute(sql, *args)

    # The push service accepts the push; marking it sent fails, so the task fails and
    # its broker runs it again.
    with connection.execute_wrapper(database_gone_once_accepted), pytest.raises(OperationalError):
        sending.send_batch(batch)
    push_env.wait_for(lambda got: len(got) == 1)
    nothing_sent = {outcome.value: 0 for outcome in providers.Outcome}
    assert sending.send_batch(batch) == nothing_sent

    settle()
    assert [p.payload["message_id"] for p in push_env.pushes()] == ["42"]
    delivery.refresh_from_db()
    assert delivery.sent_at is not None  # the retry wrote the mark the first run could not


def test_logged_out_device_gets_no_more_pushes(phone: PhoneFactory, push_env: PushServices) -> None:
    alice = phone("alice")
    bob_web = phone("bob", "browser", platform="web")
    bob_phone = phone(bob_web.user, "pixel")
    bob_web.register_webpush(push_env.new_subscription("bob-web"))
    bob_phone.register_fcm("fcm-token-bob")
    assert bob_phone.api.post("/api/v1/auth/logout").status_code == 204

    alice.send(alice.direct_with(bob_web.user), "private preview")

    push_env.wait_for(lambda got: len(got) == 1)
    settle()
    assert [p.target for p in push_env.pushes()] == ["bob-web"]


def _wait_until(condition: Callable[[], Any], timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)
