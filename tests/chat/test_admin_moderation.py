"""Moderators delete messages from the Django admin; members see a tombstone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import User
from chat.services import conversations, messages

pytestmark = pytest.mark.django_db


def test_admin_delete_for_everyone_leaves_a_tombstone_and_notifies_members(
    make_user: Callable[..., User],
) -> None:
    alice, bob = make_user(), make_user()
    moderator = User.objects.create_superuser("moderator", password="a long passphrase 42")
    conversation, _ = conversations.get_or_create_direct(alice, bob.pk)
    sent = messages.send_message(
        sender_id=alice.pk, conversation_id=conversation.pk, client_msg_id="c", text="rude"
    )
    browser = Client()
    browser.force_login(moderator)

    response = browser.post(
        "/admin/message_store/storedmessagerecord/",
        {"action": "delete_for_everyone", "_selected_action": [str(sent.message.id)]},
        follow=True,
    )

    assert response.status_code == 200
    page = messages.history_page(bob.pk, conversation.pk, before=None, after=None, limit=10)
    assert [(m.id, m.text, m.is_deleted) for m in page] == [(sent.message.id, "", True)]
    from chat.services.sync import sync_page

    events = sync_page(bob.pk, after_seq=0, limit=50).events
    assert events[-1]["type"] == "message.deleted"
    assert events[-1]["message"]["id"] == sent.message.id


def test_admin_cannot_hard_delete_messages(make_user: Callable[..., User]) -> None:
    moderator = User.objects.create_superuser("moderator", password="a long passphrase 42")
    browser = Client()
    browser.force_login(moderator)
    response = browser.get("/admin/message_store/storedmessagerecord/")
    assert response.status_code == 200
    assert b"delete_for_everyone" in response.content
    assert b'value="delete_selected"' not in response.content
