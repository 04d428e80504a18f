"""An edit racing a delete of the same message answers with the documented error code on
both transports, never ``server_error`` (which tells clients to retry forever) or a 500.

The race is made deterministic with a hook in the window it needs: the message is deleted
(through the store, as a concurrent request would) right after the edit's access check,
while the edit looks up the conversation's members. Two deletes at once (two devices) are
serialised by the message's row lock: one deletes, the other hears ``message_deleted``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import User
from chat.services import conversations
from chat.services import messages as message_service
from chat.store import get_message_store
from chat.store.base import EventKind
from chatproject.errors import ServiceError

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deleted_during_edit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Ids put in the returned list are deleted once, right after the service checked them."""
    pending: list[int] = []
    real_member_ids = conversations.member_ids

    def member_ids_after_a_concurrent_delete(conversation_id: int) -> list[int]:
        members = real_member_ids(conversation_id)
        while pending:
            get_message_store().tombstone_message(
                pending.pop(), deleted_at=timezone.now(), recipient_ids=members
            )
        return members

    monkeypatch.setattr(message_service, "member_ids", member_ids_after_a_concurrent_delete)
    return pending


def _sent_message(alice: User, bob: User) -> int:
    conversation, _ = conversations.get_or_create_direct(alice, bob.pk)
    sent = message_service.send_message(
        sender_id=alice.pk, conversation_id=conversation.pk, client_msg_id="m1", text="typo"
    )
    return sent.message.id


def test_rest_edit_of_a_message_deleted_meanwhile_is_unknown_message(
    make_user: Callable[..., User], deleted_during_edit: list[int]
) -> None:
    alice, bob = make_user(), make_user()
    message_id = _sent_message(alice, bob)
    token = account_services.issue_device_token(alice, device_name="laptop", platform="web").token
    client = APIClient()
    client.raise_request_exception = False  # see the response a real client would get
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    deleted_during_edit.append(message_id)

    response = client.patch(f"/api/v1/messages/{message_id}", {"text": "fixed"}, format="json")

    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "unknown_message"


async def test_websocket_edit_of_a_message_deleted_meanwhile_is_unknown_message(
    make_user: Callable[..., User], ws_devices: Any, deleted_during_edit: list[int]
) -> None:
    alice, bob = await adb(make_user)(), await adb(make_user)()
    message_id = await adb(_sent_message)(alice, bob)
    phone = await ws_devices(alice)
    await phone.connect()
    deleted_during_edit.append(message_id)

    await phone.send({"type": "edit", "message_id": message_id, "text": "fixed", "ref": "e1"})

    while True:
        frame = await phone.receive()
        if frame["type"] == "error":
            break
        assert frame["type"] in {"receipt", "message.deleted"}, frame
    assert (frame["code"], frame["ref"]) == ("unknown_message", "e1")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="watches PostgreSQL's lock waits")
def test_two_deletes_at_once_delete_once_and_the_loser_hears_message_deleted(
    make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = make_user(), make_user()
    message_id = _sent_message(alice, bob)
    outcomes: dict[str, str] = {}
    real_member_ids = conversations.member_ids
    second = threading.Thread(target=lambda: _delete(alice, message_id, "second", outcomes))

    def member_ids_while_another_device_deletes(conversation_id: int) -> list[int]:
        # The first delete has checked the message; the second one starts now and either
        # finishes (no lock) or waits for the first one's lock.
        if not second.is_alive() and "second" not in outcomes:
            second.start()
            deadline = time.monotonic() + 10
            while second.is_alive() and not _someone_waits_for_a_lock():
                assert time.monotonic() < deadline, "the second delete neither ran nor waited"
        return real_member_ids(conversation_id)

    monkeypatch.setattr(message_service, "member_ids", member_ids_while_another_device_deletes)
    first = threading.Thread(target=lambda: _delete(alice, message_id, "first", outcomes))
    first.start()
    first.join(30)
    second.join(30)

    assert outcomes == {"first": "deleted", "second": "message_deleted"}
    bobs_events = get_message_store().read_sync(bob.pk, after_seq=0, limit=100)
    assert [e.kind for e in bobs_events].count(EventKind.DELETED) == 1


def _delete(user: User, message_id: int, name: str, outcomes: dict[str, str]) -> None:
    try:
        message_service.delete_message(user_id=user.pk, message_id=message_id)
        outcomes[name] = "deleted"
    except ServiceError as error:
        outcomes[name] = error.code
    except Exception as error:  # noqa: BLE001 (the assertion shows it; a thread cannot raise)
        outcomes[name] = repr(error)
    finally:
        connection.close()


def _someone_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        # pg_locks is live (pg_stat_activity is a snapshot within a transaction).
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        (waiting,) = cursor.fetchone()
    return bool(waiting)
