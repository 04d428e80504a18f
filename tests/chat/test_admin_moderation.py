"""Moderation through the Django admin goes through the services: members' devices see an
admin's change live and in their sync queues exactly as they see a member's, and the
rules (group size, fixed direct conversations, tombstones instead of hard deletes) hold.

Every request goes through the real admin views with a superuser's browser session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from channels.db import database_sync_to_async as adb
from django.conf import settings
from django.test import Client

from accounts.models import User
from chat.models import Conversation, ConversationKind, Membership, Role
from chat.services import conversations, messages
from chat.services.sync import sync_page

from .conftest import WsDevice

UsersFactory = Callable[[int], list[User]]
CHANGE_URL = "/admin/chat/conversation/{}/change/"


def _moderator_browser() -> tuple[Client, User]:
    moderator = User.objects.create_superuser("moderator", password="a long passphrase 42")
    browser = Client()
    browser.force_login(moderator)
    return browser, moderator


def _change_form(
    conversation: Conversation,
    *,
    name: str | None = None,
    add: Sequence[int] = (),
    remove: Sequence[int] = (),
    **extra: str,
) -> dict[str, Any]:
    """The POST body of the conversation's change form, as the admin page submits it."""
    current = list(Membership.objects.filter(conversation=conversation).order_by("pk"))
    # Every field the form has ever had is sent (kind, creator, roles): read-only ones are
    # ignored by the admin, so a request that would change them must change nothing.
    data: dict[str, Any] = {
        "kind": conversation.kind,
        "created_by": str(conversation.created_by_id or ""),
        "name": conversation.name if name is None else name,
        "memberships-TOTAL_FORMS": str(len(current) + len(add)),
        "memberships-INITIAL_FORMS": str(len(current)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "_save": "Save",
        **extra,
    }
    for index, membership in enumerate(current):
        data[f"memberships-{index}-id"] = str(membership.pk)
        data[f"memberships-{index}-conversation"] = str(conversation.pk)
        data[f"memberships-{index}-user"] = str(membership.user_id)
        data[f"memberships-{index}-role"] = membership.role
        if membership.user_id in remove:
            data[f"memberships-{index}-DELETE"] = "on"
    for offset, user_id in enumerate(add):
        index = len(current) + offset
        data[f"memberships-{index}-conversation"] = str(conversation.pk)
        data[f"memberships-{index}-user"] = str(user_id)
        data[f"memberships-{index}-role"] = Role.MEMBER
    return data


def _admin_post(browser: Client, conversation: Conversation, **changes: Any) -> str:
    response = browser.post(
        CHANGE_URL.format(conversation.pk), _change_form(conversation, **changes), follow=True
    )
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def _member_ids(conversation: Conversation) -> list[int]:
    return sorted(conversations.member_ids(conversation.pk))


def _queue(user: User) -> list[dict[str, Any]]:
    return sync_page(user.pk, after_seq=0, limit=500).events


async def _event(device: WsDevice, frame_type: str) -> dict[str, Any]:
    frame = await device.receive_type(frame_type, timeout=5)
    assert frame["seq"] == device.cursor
    return frame


@pytest.mark.django_db(transaction=True)
async def test_admin_membership_changes_and_rename_reach_members_devices_live_and_in_sync(
    users: UsersFactory, ws_devices: Any
) -> None:
    owner, member, newcomer = await adb(users)(3)
    group = await adb(conversations.create_group)(owner, name="Team", member_ids_=[member.pk])
    browser, moderator = await adb(_moderator_browser)()
    devices = {u.pk: await ws_devices(u, f"phone-{u.pk}") for u in (owner, member, newcomer)}
    for device in devices.values():
        await device.connect()

    await adb(_admin_post)(browser, group, add=[newcomer.pk])

    everyone = sorted([owner.pk, member.pk, newcomer.pk])
    for user_id in everyone:
        added = await _event(devices[user_id], "member.added")
        assert added["user_ids"] == [newcomer.pk]
        assert added["actor_id"] == moderator.pk
        assert added["conversation"]["member_ids"] == everyone
        assert added["conversation"]["kind"] == "group"

    await adb(_admin_post)(browser, group, name="Renamed team")

    for user_id in everyone:
        renamed = await _event(devices[user_id], "conversation.updated")
        assert renamed["conversation"]["name"] == "Renamed team"
        assert renamed["actor_id"] == moderator.pk

    await adb(_admin_post)(
        browser, await adb(Conversation.objects.get)(pk=group.pk), remove=[member.pk]
    )

    for user_id in everyone:  # the removed member learns it too
        removed = await _event(devices[user_id], "member.removed")
        assert removed["user_ids"] == [member.pk]
        assert removed["actor_id"] == moderator.pk
        assert removed["conversation"]["member_ids"] == sorted([owner.pk, newcomer.pk])
    for device in devices.values():
        assert await device.nothing_more()

    assert await adb(_member_ids)(group) == sorted([owner.pk, newcomer.pk])
    # The sync queue holds exactly what arrived live, so a device offline meanwhile gets it.
    for user in (owner, member, newcomer):
        queue = await adb(_queue)(user)
        live_tail = [e for e in queue if e["actor_id"] == moderator.pk]
        assert [e["type"] for e in live_tail] == [
            "member.added",
            "conversation.updated",
            "member.removed",
        ]
        assert live_tail[-1]["seq"] == devices[user.pk].cursor


@pytest.mark.django_db(transaction=True)
async def test_admin_events_have_the_shape_of_a_group_owners_events(
    users: UsersFactory, ws_devices: Any
) -> None:
    """The same change made by the group's owner (REST/WS services) and by a moderator
    (admin) gives members frames with the same fields."""
    owner, member, first, second = await adb(users)(4)
    group = await adb(conversations.create_group)(owner, name="Team", member_ids_=[member.pk])
    browser, _ = await adb(_moderator_browser)()
    device = await ws_devices(member, "phone")
    await device.connect()

    await adb(conversations.add_members)(owner, group.pk, [first.pk])
    by_owner = await _event(device, "member.added")
    await adb(_admin_post)(browser, group, add=[second.pk])
    by_moderator = await _event(device, "member.added")

    def shape(frame: dict[str, Any]) -> tuple[list[str], list[str]]:
        return sorted(frame), sorted(frame["conversation"])

    assert shape(by_moderator) == shape(by_owner)


@pytest.mark.django_db
def test_admin_cannot_grow_a_group_past_the_member_limit(
    make_user: Callable[..., User],
) -> None:
    owner = make_user()
    others = [make_user() for _ in range(settings.MAX_GROUP_MEMBERS - 1)]
    group = conversations.create_group(owner, name="Full", member_ids_=[u.pk for u in others])
    browser, _ = _moderator_browser()
    extra = make_user()
    before = _queue(owner)

    page = _admin_post(browser, group, add=[extra.pk])

    assert f"at most {settings.MAX_GROUP_MEMBERS} members" in page
    assert len(_member_ids(group)) == settings.MAX_GROUP_MEMBERS
    assert extra.pk not in _member_ids(group)
    assert _queue(owner) == before  # nothing was announced either


@pytest.mark.django_db
def test_admin_swaps_a_member_in_a_full_group(make_user: Callable[..., User]) -> None:
    owner = make_user()
    others = [make_user() for _ in range(settings.MAX_GROUP_MEMBERS - 1)]
    group = conversations.create_group(owner, name="Full", member_ids_=[u.pk for u in others])
    browser, _ = _moderator_browser()
    extra = make_user()

    _admin_post(browser, group, add=[extra.pk], remove=[others[0].pk])

    members = _member_ids(group)
    assert len(members) == settings.MAX_GROUP_MEMBERS
    assert extra.pk in members
    assert others[0].pk not in members


@pytest.mark.django_db
def test_a_direct_conversation_cannot_become_a_group_or_change_members(
    make_user: Callable[..., User],
) -> None:
    alice, bob, mallory = make_user(), make_user(), make_user()
    direct, _ = conversations.get_or_create_direct(alice, bob.pk)
    browser, _ = _moderator_browser()
    before = _queue(alice)

    _admin_post(
        browser, direct, name="Now a group", add=[mallory.pk], remove=[bob.pk], kind="group"
    )

    direct.refresh_from_db()
    assert direct.kind == ConversationKind.DIRECT
    assert direct.name == ""
    assert _member_ids(direct) == sorted([alice.pk, bob.pk])
    assert _queue(alice) == before


@pytest.mark.django_db
def test_admin_removing_the_owner_hands_the_group_over(make_user: Callable[..., User]) -> None:
    owner, admin_member, member = make_user(), make_user(), make_user()
    group = conversations.create_group(owner, name="Team", member_ids_=[admin_member.pk, member.pk])
    Membership.objects.filter(conversation=group, user=admin_member).update(role=Role.ADMIN)
    browser, moderator = _moderator_browser()

    _admin_post(browser, group, remove=[owner.pk])

    assert _member_ids(group) == sorted([admin_member.pk, member.pk])
    assert Membership.objects.get(conversation=group, user=admin_member).role == Role.OWNER
    removed = _queue(owner)[-1]
    assert (removed["type"], removed["user_ids"], removed["actor_id"]) == (
        "member.removed",
        [owner.pk],
        moderator.pk,
    )


@pytest.mark.django_db
def test_admin_cannot_create_or_hard_delete_conversations(
    make_user: Callable[..., User],
) -> None:
    alice, bob = make_user(), make_user()
    group = conversations.create_group(alice, name="Team", member_ids_=[bob.pk])
    browser, _ = _moderator_browser()

    assert browser.get("/admin/chat/conversation/add/").status_code == 403
    assert (
        browser.post(f"/admin/chat/conversation/{group.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    listing = browser.get("/admin/chat/conversation/")
    assert b'value="delete_selected"' not in listing.content
    assert _member_ids(group) == sorted([alice.pk, bob.pk])


@pytest.mark.django_db
def test_admin_delete_for_everyone_leaves_a_tombstone_and_notifies_members(
    make_user: Callable[..., User],
) -> None:
    alice, bob = make_user(), make_user()
    conversation, _ = conversations.get_or_create_direct(alice, bob.pk)
    sent = messages.send_message(
        sender_id=alice.pk, conversation_id=conversation.pk, client_msg_id="c", text="rude"
    )
    browser, _ = _moderator_browser()

    response = browser.post(
        "/admin/message_store/storedmessagerecord/",
        {"action": "delete_for_everyone", "_selected_action": [str(sent.message.id)]},
        follow=True,
    )

    assert response.status_code == 200
    page = messages.history_page(bob.pk, conversation.pk, before=None, after=None, limit=10)
    assert [(m.id, m.text, m.is_deleted) for m in page] == [(sent.message.id, "", True)]
    events = _queue(bob)
    assert events[-1]["type"] == "message.deleted"
    assert events[-1]["message"]["id"] == sent.message.id


@pytest.mark.django_db
def test_admin_cannot_hard_delete_messages(make_user: Callable[..., User]) -> None:
    alice, bob = make_user(), make_user()
    conversation, _ = conversations.get_or_create_direct(alice, bob.pk)
    sent = messages.send_message(
        sender_id=alice.pk, conversation_id=conversation.pk, client_msg_id="c", text="kept"
    )
    browser, _ = _moderator_browser()
    response = browser.get("/admin/message_store/storedmessagerecord/")
    assert response.status_code == 200
    assert b"delete_for_everyone" in response.content
    assert b'value="delete_selected"' not in response.content

    deleted = browser.post(
        f"/admin/message_store/storedmessagerecord/{sent.message.id}/delete/", {"post": "yes"}
    )

    assert deleted.status_code == 403
    page = messages.history_page(bob.pk, conversation.pk, before=None, after=None, limit=10)
    assert [(m.id, m.text) for m in page] == [(sent.message.id, "kept")]


@pytest.mark.django_db
def test_change_pages_show_members_and_offer_only_what_the_services_do(
    make_user: Callable[..., User],
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    group = conversations.create_group(alice, name="Team", member_ids_=[bob.pk])
    direct, _ = conversations.get_or_create_direct(alice, bob.pk)
    browser, _ = _moderator_browser()

    group_page = browser.get(CHANGE_URL.format(group.pk)).content.decode()
    direct_page = browser.get(CHANGE_URL.format(direct.pk)).content.decode()

    assert 'name="name"' in group_page  # a group can be renamed
    assert 'name="memberships-0-DELETE"' in group_page  # and its members removed
    assert 'name="name"' not in direct_page
    assert 'name="memberships-0-DELETE"' not in direct_page
    for page in (group_page, direct_page):
        assert 'name="kind"' not in page
        assert 'name="memberships-0-role"' not in page
        assert "alice" in page
        assert "bob" in page
