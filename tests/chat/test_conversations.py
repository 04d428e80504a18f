"""Conversations over the REST API: direct and group creation, the conversation list, one
conversation's details, renaming and muting, and membership changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import User
from chat.models import Conversation, Membership, Role
from chat.store import get_message_store
from tests.accounts.helpers import assert_error

pytestmark = pytest.mark.django_db

MakeUser = Callable[..., User]
LoginClient = Callable[..., tuple[APIClient, User, str]]

CONVERSATIONS = "/api/v1/conversations"


def create_direct(client: APIClient, other: User) -> Any:
    return client.post(CONVERSATIONS, {"kind": "direct", "user_id": other.pk}, format="json")


def create_group(client: APIClient, name: str, members: list[User]) -> Any:
    return client.post(
        CONVERSATIONS,
        {"kind": "group", "name": name, "member_ids": [m.pk for m in members]},
        format="json",
    )


def send(client: APIClient, conversation_id: int, text: str, client_msg_id: str) -> Any:
    return client.post(
        f"{CONVERSATIONS}/{conversation_id}/messages",
        {"client_msg_id": client_msg_id, "text": text},
        format="json",
    )


def group_id(client: APIClient, name: str, members: list[User]) -> int:
    response = create_group(client, name, members)
    assert response.status_code == 201, response.content
    conversation_id: int = response.json()["id"]
    return conversation_id


def member_roles(client: APIClient, conversation_id: int) -> dict[int, str]:
    response = client.get(f"{CONVERSATIONS}/{conversation_id}")
    assert response.status_code == 200, response.content
    return {m["user_id"]: m["role"] for m in response.json()["members"]}


# --- direct conversations ---------------------------------------------------------------------


def test_direct_conversation_is_created_once_per_pair_whoever_starts_it(
    login_client: LoginClient,
) -> None:
    alice_client, alice, _ = login_client()
    bob_client, bob, _ = login_client()

    first = create_direct(alice_client, bob)
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["kind"] == "direct"
    assert body["last_message"] is None
    assert body["unread_count"] == 0
    assert {m["user_id"] for m in body["members"]} == {alice.pk, bob.pk}

    again = create_direct(alice_client, bob)
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]

    from_bob = create_direct(bob_client, alice)
    assert from_bob.status_code == 200
    assert from_bob.json()["id"] == body["id"]
    assert Conversation.objects.filter(kind="direct").count() == 1


def test_direct_conversation_with_yourself_is_refused(login_client: LoginClient) -> None:
    client, user, _ = login_client()
    assert_error(create_direct(client, user), 400, "invalid_member")
    assert not Conversation.objects.exists()


def test_direct_conversation_with_unknown_or_deactivated_user_is_404(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    response = client.post(CONVERSATIONS, {"kind": "direct", "user_id": 999_999}, format="json")
    assert_error(response, 404, "unknown_user")

    gone = make_user()
    User.objects.filter(pk=gone.pk).update(is_active=False)
    assert_error(create_direct(client, gone), 404, "unknown_user")
    assert not Conversation.objects.exists()


def test_direct_conversation_needs_a_user_id(login_client: LoginClient) -> None:
    client, _, _ = login_client()
    response = client.post(CONVERSATIONS, {"kind": "direct"}, format="json")
    assert_error(response, 400, "validation_error", fields=("user_id",))
    response = client.post(CONVERSATIONS, {"kind": "channel", "user_id": 1}, format="json")
    assert_error(response, 400, "validation_error", fields=("kind",))


# --- groups -----------------------------------------------------------------------------------


def test_group_creator_is_owner_and_listed_members_join(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, owner, _ = login_client()
    bob, carol = make_user(), make_user()

    response = create_group(client, "  Weekend plans  ", [bob, carol, bob])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "group"
    assert body["name"] == "Weekend plans"
    assert body["role"] == "owner"
    roles = {m["user_id"]: m["role"] for m in body["members"]}
    assert roles == {owner.pk: "owner", bob.pk: "member", carol.pk: "member"}


def test_group_needs_a_name(login_client: LoginClient, make_user: MakeUser) -> None:
    client, _, _ = login_client()
    bob = make_user()
    for payload in (
        {"kind": "group", "member_ids": [bob.pk]},
        {"kind": "group", "name": "   ", "member_ids": [bob.pk]},
    ):
        response = client.post(CONVERSATIONS, payload, format="json")
        assert_error(response, 400, "validation_error", fields=("name",))
    assert not Conversation.objects.exists()


def test_group_with_an_unknown_member_is_404_and_not_created(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    bob = make_user()
    response = client.post(
        CONVERSATIONS,
        {"kind": "group", "name": "g", "member_ids": [bob.pk, 999_999]},
        format="json",
    )
    error = assert_error(response, 404, "unknown_user")
    assert "999999" in error["message"]
    assert not Conversation.objects.exists()


def test_group_of_100_is_allowed_and_101_is_refused_without_creating_anything(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    assert settings.MAX_GROUP_MEMBERS == 100
    client, owner, _ = login_client()
    others = [make_user() for _ in range(100)]

    full = create_group(client, "hundred", others[:99])
    assert full.status_code == 201, full.content
    assert len(full.json()["members"]) == 100
    assert member_roles(client, full.json()["id"])[owner.pk] == "owner"

    store = get_message_store()
    seq_before = store.last_seq(others[99].pk)
    too_many = create_group(client, "hundred and one", others)
    assert_error(too_many, 409, "group_full")
    assert list(Conversation.objects.values_list("name", flat=True)) == ["hundred"]
    assert not Membership.objects.filter(user=others[99]).exists()
    assert store.last_seq(others[99].pk) == seq_before

    listed = client.get(CONVERSATIONS).json()["results"]
    assert [c["name"] for c in listed] == ["hundred"]


# --- the conversation list --------------------------------------------------------------------


def test_list_is_ordered_by_latest_activity_with_last_message_and_unread(
    login_client: LoginClient,
) -> None:
    alice_client, alice, _ = login_client()
    bob_client, bob, _ = login_client()
    carol_client, carol, _ = login_client()
    with_bob = create_direct(alice_client, bob).json()["id"]
    with_carol = create_direct(alice_client, carol).json()["id"]
    group = group_id(alice_client, "all", [bob, carol])

    assert send(bob_client, with_bob, "hi alice", "b1").status_code == 201
    assert send(carol_client, with_carol, "hey", "c1").status_code == 201
    assert send(carol_client, with_carol, "you there?", "c2").status_code == 201
    last = send(bob_client, with_bob, "ping", "b2").json()["message"]

    listed = alice_client.get(CONVERSATIONS).json()
    assert listed["has_more"] is False
    entries = listed["results"]
    # The group has no messages: it comes after every conversation with activity.
    assert [e["id"] for e in entries] == [with_bob, with_carol, group]
    assert entries[0]["last_message"]["id"] == last["id"]
    assert entries[0]["last_message"]["text"] == "ping"
    assert entries[0]["last_message_id"] == last["id"]
    assert [e["unread_count"] for e in entries] == [2, 2, 0]
    assert [e["last_read_id"] for e in entries] == [0, 0, 0]
    assert entries[2]["last_message"] is None

    # Alice answers carol: that conversation moves to the top.
    send(alice_client, with_carol, "yes", "a1")
    entries = alice_client.get(CONVERSATIONS).json()["results"]
    assert [e["id"] for e in entries] == [with_carol, with_bob, group]
    assert entries[0]["last_message"]["sender_id"] == alice.pk


def test_list_pages_with_limit_and_offset(login_client: LoginClient, make_user: MakeUser) -> None:
    client, _, _ = login_client()
    created = [create_direct(client, make_user()).json()["id"] for _ in range(5)]
    newest_first = sorted(created, reverse=True)

    first = client.get(CONVERSATIONS, {"limit": 2}).json()
    assert [e["id"] for e in first["results"]] == newest_first[:2]
    assert first["has_more"] is True
    second = client.get(CONVERSATIONS, {"limit": 2, "offset": 2}).json()
    assert [e["id"] for e in second["results"]] == newest_first[2:4]
    assert second["has_more"] is True
    last = client.get(CONVERSATIONS, {"limit": 2, "offset": 4}).json()
    assert [e["id"] for e in last["results"]] == newest_first[4:]
    assert last["has_more"] is False
    beyond = client.get(CONVERSATIONS, {"limit": 2, "offset": 10}).json()
    assert beyond == {"results": [], "has_more": False}

    for bad in ({"limit": "ten"}, {"limit": 0}, {"limit": 201}, {"offset": -1}):
        assert_error(client.get(CONVERSATIONS, bad), 400, "validation_error")


def test_list_never_shows_other_peoples_conversations(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    alice_client, _, _ = login_client()
    bob, carol = make_user(), make_user()
    create_direct(alice_client, bob)
    group_id(alice_client, "private", [carol])

    outsider_client, _, _ = login_client()
    assert outsider_client.get(CONVERSATIONS).json() == {"results": [], "has_more": False}
    bob_client, _, _ = login_client(bob)
    assert [e["kind"] for e in bob_client.get(CONVERSATIONS).json()["results"]] == ["direct"]


def test_list_needs_authentication(api: APIClient) -> None:
    assert_error(api.get(CONVERSATIONS), 401, "not_authenticated")


# --- one conversation -------------------------------------------------------------------------


def test_detail_shows_members_roles_and_read_positions(login_client: LoginClient) -> None:
    alice_client, alice, _ = login_client()
    bob_client, bob, _ = login_client()
    carol_client, carol, _ = login_client()
    conversation_id = group_id(alice_client, "trio", [bob, carol])
    message_id = send(alice_client, conversation_id, "hello", "m1").json()["message"]["id"]
    read = bob_client.post(
        f"{CONVERSATIONS}/{conversation_id}/read", {"message_id": message_id}, format="json"
    )
    assert read.status_code == 200

    body = carol_client.get(f"{CONVERSATIONS}/{conversation_id}").json()
    assert body["id"] == conversation_id
    assert body["name"] == "trio"
    assert body["role"] == "member"
    assert body["unread_count"] == 1
    members = {m["user_id"]: m for m in body["members"]}
    assert {u: m["role"] for u, m in members.items()} == {
        alice.pk: "owner",
        bob.pk: "member",
        carol.pk: "member",
    }
    assert members[bob.pk]["last_read_id"] == message_id
    assert members[carol.pk]["last_read_id"] == 0


def test_detail_of_someone_elses_or_a_missing_conversation_is_the_same_404(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    alice_client, _, _ = login_client()
    conversation_id = create_direct(alice_client, make_user()).json()["id"]
    outsider, _, _ = login_client()

    hidden = assert_error(
        outsider.get(f"{CONVERSATIONS}/{conversation_id}"), 404, "unknown_conversation"
    )
    missing = assert_error(outsider.get(f"{CONVERSATIONS}/987654321"), 404, "unknown_conversation")
    assert hidden == missing


# --- rename and mute --------------------------------------------------------------------------


def test_owner_and_admin_can_rename_but_a_plain_member_cannot(
    login_client: LoginClient,
) -> None:
    owner_client, _, _ = login_client()
    admin_client, admin, _ = login_client()
    member_client, member, _ = login_client()
    conversation_id = group_id(owner_client, "old", [admin, member])
    Membership.objects.filter(conversation_id=conversation_id, user=admin).update(role=Role.ADMIN)
    url = f"{CONVERSATIONS}/{conversation_id}"

    renamed = owner_client.patch(url, {"name": "by owner"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "by owner"
    renamed = admin_client.patch(url, {"name": "by admin"}, format="json")
    assert renamed.status_code == 200
    assert member_client.get(url).json()["name"] == "by admin"

    assert_error(
        member_client.patch(url, {"name": "by member"}, format="json"), 403, "not_group_admin"
    )
    assert owner_client.get(url).json()["name"] == "by admin"

    assert_error(owner_client.patch(url, {"name": "  "}, format="json"), 400, "validation_error")
    assert_error(
        owner_client.patch(url, {"name": "x" * 101}, format="json"), 400, "validation_error"
    )

    outsider, _, _ = login_client()
    assert_error(outsider.patch(url, {"name": "mine"}, format="json"), 404, "unknown_conversation")


def test_a_direct_conversation_cannot_be_renamed(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    conversation_id = create_direct(client, make_user()).json()["id"]
    response = client.patch(f"{CONVERSATIONS}/{conversation_id}", {"name": "us"}, format="json")
    assert_error(response, 400, "not_a_group")


def test_mute_applies_only_to_the_user_who_muted(login_client: LoginClient) -> None:
    alice_client, _, _ = login_client()
    bob_client, bob, _ = login_client()
    conversation_id = create_direct(alice_client, bob).json()["id"]
    url = f"{CONVERSATIONS}/{conversation_id}"

    muted = bob_client.patch(url, {"muted": True}, format="json")
    assert muted.status_code == 200
    assert muted.json()["muted"] is True
    assert bob_client.get(url).json()["muted"] is True
    assert alice_client.get(url).json()["muted"] is False
    assert bob_client.get(CONVERSATIONS).json()["results"][0]["muted"] is True

    assert bob_client.patch(url, {"muted": False}, format="json").json()["muted"] is False
    assert bob_client.get(url).json()["muted"] is False


# --- members ----------------------------------------------------------------------------------


def test_owner_adds_members_and_a_plain_member_cannot(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    owner_client, owner, _ = login_client()
    member_client, member, _ = login_client()
    conversation_id = group_id(owner_client, "team", [member])
    earlier = send(owner_client, conversation_id, "before you joined", "m1").json()["message"]
    newcomer, another = make_user(), make_user()
    url = f"{CONVERSATIONS}/{conversation_id}/members"

    added = owner_client.post(url, {"user_ids": [newcomer.pk, member.pk]}, format="json")
    assert added.status_code == 200, added.content
    members = {m["user_id"]: m for m in added.json()["members"]}
    assert set(members) == {owner.pk, member.pk, newcomer.pk}
    assert members[newcomer.pk]["role"] == "member"

    # The newcomer sees the history but starts with nothing unread.
    newcomer_client, _, _ = login_client(newcomer)
    entry = newcomer_client.get(CONVERSATIONS).json()["results"][0]
    assert entry["id"] == conversation_id
    assert entry["unread_count"] == 0
    history = newcomer_client.get(f"{CONVERSATIONS}/{conversation_id}/messages").json()
    assert [m["id"] for m in history["results"]] == [earlier["id"]]

    refused = member_client.post(url, {"user_ids": [another.pk]}, format="json")
    assert_error(refused, 403, "not_group_admin")
    assert another.pk not in member_roles(owner_client, conversation_id)

    assert_error(owner_client.post(url, {"user_ids": []}, format="json"), 400, "validation_error")
    assert_error(
        owner_client.post(url, {"user_ids": [999_999]}, format="json"), 404, "unknown_user"
    )


def test_adding_beyond_100_members_is_refused(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    conversation_id = group_id(client, "big", [make_user() for _ in range(98)])
    url = f"{CONVERSATIONS}/{conversation_id}/members"
    extra = [make_user(), make_user()]

    assert_error(
        client.post(url, {"user_ids": [u.pk for u in extra]}, format="json"), 409, "group_full"
    )
    assert len(member_roles(client, conversation_id)) == 99
    assert client.post(url, {"user_ids": [extra[0].pk]}, format="json").status_code == 200
    assert len(member_roles(client, conversation_id)) == 100
    assert_error(client.post(url, {"user_ids": [extra[1].pk]}, format="json"), 409, "group_full")


def test_direct_conversation_members_are_fixed(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    bob = make_user()
    conversation_id = create_direct(client, bob).json()["id"]
    response = client.post(
        f"{CONVERSATIONS}/{conversation_id}/members", {"user_ids": [make_user().pk]}, format="json"
    )
    assert_error(response, 400, "not_a_group")
    leave = client.delete(f"{CONVERSATIONS}/{conversation_id}/members/{bob.pk}")
    assert_error(leave, 400, "not_a_group")


def test_leaving_a_direct_conversation_is_refused(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, user, _ = login_client()
    conversation_id = create_direct(client, make_user()).json()["id"]
    response = client.delete(f"{CONVERSATIONS}/{conversation_id}/members/{user.pk}")
    assert_error(response, 400, "not_a_group")
    assert client.get(f"{CONVERSATIONS}/{conversation_id}").status_code == 200


def test_removed_member_loses_access_to_history_and_sending(login_client: LoginClient) -> None:
    owner_client, _, _ = login_client()
    bob_client, bob, _ = login_client()
    carol_client, carol, _ = login_client()
    conversation_id = group_id(owner_client, "team", [bob, carol])
    assert send(bob_client, conversation_id, "I am here", "b1").status_code == 201

    removed = owner_client.delete(f"{CONVERSATIONS}/{conversation_id}/members/{bob.pk}")
    assert removed.status_code == 204
    assert bob.pk not in member_roles(owner_client, conversation_id)

    base = f"{CONVERSATIONS}/{conversation_id}"
    assert_error(bob_client.get(f"{base}/messages"), 404, "unknown_conversation")
    assert_error(
        send(bob_client, conversation_id, "still here?", "b2"), 404, "unknown_conversation"
    )
    assert_error(bob_client.get(base), 404, "unknown_conversation")
    assert bob_client.get(CONVERSATIONS).json()["results"] == []
    history = carol_client.get(f"{base}/messages").json()["results"]
    assert [m["text"] for m in history] == ["I am here"]

    # The removed user learns about it through their sync queue.
    events = bob_client.get("/api/v1/sync", {"after": 0}).json()["events"]
    assert events[-1]["type"] == "member.removed"
    assert events[-1]["user_ids"] == [bob.pk]


def test_a_member_leaves_with_their_own_id(login_client: LoginClient) -> None:
    owner_client, owner, _ = login_client()
    bob_client, bob, _ = login_client()
    conversation_id = group_id(owner_client, "team", [bob])

    left = bob_client.delete(f"{CONVERSATIONS}/{conversation_id}/members/{bob.pk}")
    assert left.status_code == 204
    assert member_roles(owner_client, conversation_id) == {owner.pk: "owner"}
    assert_error(
        bob_client.get(f"{CONVERSATIONS}/{conversation_id}/messages"), 404, "unknown_conversation"
    )


def test_nobody_removes_the_owner_and_plain_members_remove_nobody(
    login_client: LoginClient,
) -> None:
    owner_client, owner, _ = login_client()
    admin_client, admin, _ = login_client()
    member_client, member, _ = login_client()
    conversation_id = group_id(owner_client, "team", [admin, member])
    Membership.objects.filter(conversation_id=conversation_id, user=admin).update(role=Role.ADMIN)
    base = f"{CONVERSATIONS}/{conversation_id}/members"

    assert_error(admin_client.delete(f"{base}/{owner.pk}"), 403, "cannot_remove_owner")
    assert_error(member_client.delete(f"{base}/{owner.pk}"), 403, "not_group_admin")
    assert_error(member_client.delete(f"{base}/{admin.pk}"), 403, "not_group_admin")
    assert_error(owner_client.delete(f"{base}/999999"), 404, "not_a_member")
    assert member_roles(owner_client, conversation_id) == {
        owner.pk: "owner",
        admin.pk: "admin",
        member.pk: "member",
    }

    # An admin may remove a plain member.
    assert admin_client.delete(f"{base}/{member.pk}").status_code == 204
    assert member.pk not in member_roles(owner_client, conversation_id)


def test_when_the_owner_leaves_an_admin_takes_over(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    owner_client, owner, _ = login_client()
    member = make_user()
    admin_client, admin, _ = login_client()
    conversation_id = group_id(owner_client, "team", [member, admin])
    Membership.objects.filter(conversation_id=conversation_id, user=admin).update(role=Role.ADMIN)

    left = owner_client.delete(f"{CONVERSATIONS}/{conversation_id}/members/{owner.pk}")
    assert left.status_code == 204
    assert member_roles(admin_client, conversation_id) == {admin.pk: "owner", member.pk: "member"}
