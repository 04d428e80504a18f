"""Messages over the REST API: sending, history, one message, edits and deletions, read
positions, the sync queue for clients without a socket, the send rate limit, and the error
body every failure shares."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from chat.models import Membership
from chat.store.models import StoredMessageRecord
from tests.accounts.helpers import assert_error, assert_error_shape

pytestmark = pytest.mark.django_db

MakeUser = Callable[..., User]
LoginClient = Callable[..., tuple[APIClient, User, str]]

CONVERSATIONS = "/api/v1/conversations"


def direct(client: APIClient, other: User) -> int:
    response = client.post(CONVERSATIONS, {"kind": "direct", "user_id": other.pk}, format="json")
    assert response.status_code in (200, 201), response.content
    conversation_id: int = response.json()["id"]
    return conversation_id


def send(client: APIClient, conversation_id: int, text: str, client_msg_id: str) -> Any:
    return client.post(
        f"{CONVERSATIONS}/{conversation_id}/messages",
        {"client_msg_id": client_msg_id, "text": text},
        format="json",
    )


def sent_id(client: APIClient, conversation_id: int, text: str, client_msg_id: str) -> int:
    response = send(client, conversation_id, text, client_msg_id)
    assert response.status_code == 201, response.content
    message_id: int = response.json()["message"]["id"]
    return message_id


def history(client: APIClient, conversation_id: int, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{CONVERSATIONS}/{conversation_id}/messages", params)
    assert response.status_code == 200, response.content
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def read(client: APIClient, conversation_id: int, message_id: int) -> dict[str, Any]:
    response = client.post(
        f"{CONVERSATIONS}/{conversation_id}/read", {"message_id": message_id}, format="json"
    )
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def unread(client: APIClient, conversation_id: int) -> int:
    count: int = client.get(f"{CONVERSATIONS}/{conversation_id}").json()["unread_count"]
    return count


def pair(login_client: LoginClient) -> tuple[APIClient, User, APIClient, User, int]:
    alice_client, alice, _ = login_client()
    bob_client, bob, _ = login_client()
    return alice_client, alice, bob_client, bob, direct(alice_client, bob)


# --- sending ----------------------------------------------------------------------------------


def test_send_then_retry_with_the_same_client_msg_id_acknowledges_the_original(
    login_client: LoginClient,
) -> None:
    alice_client, alice, bob_client, _, conversation_id = pair(login_client)

    first = send(alice_client, conversation_id, "hello bob", "c-1")
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["duplicate"] is False
    message = body["message"]
    assert message["text"] == "hello bob"
    assert message["sender_id"] == alice.pk
    assert message["conversation_id"] == conversation_id
    assert message["client_msg_id"] == "c-1"
    assert message["deleted"] is False
    assert message["edited_at"] is None

    retry = send(alice_client, conversation_id, "hello bob", "c-1")
    assert retry.status_code == 200
    again = retry.json()
    assert again["duplicate"] is True
    assert again["message"]["id"] == message["id"]
    assert again["seq"] == body["seq"]

    assert [m["id"] for m in history(bob_client, conversation_id)] == [message["id"]]
    assert unread(bob_client, conversation_id) == 1


def test_longest_message_of_4_byte_characters_is_stored_byte_for_byte(
    login_client: LoginClient,
) -> None:
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    text = "\U0001f600\U0001f9d1\U0001f3fd\U00010348" * 24_999 + "\U0001f44b\U0001f30d\U0001f680"
    assert len(text) == 99_999
    assert len(text.encode("utf-8")) == 4 * 99_999

    response = send(alice_client, conversation_id, text, "long")
    assert response.status_code == 201, response.content[:300]
    message_id = response.json()["message"]["id"]

    [stored] = history(bob_client, conversation_id)
    assert stored["id"] == message_id
    assert stored["length"] == 99_999
    assert stored["truncated"] is False
    assert stored["text"].encode("utf-8") == text.encode("utf-8")
    one = bob_client.get(f"/api/v1/messages/{message_id}").json()
    assert one["text"] == text


def test_message_of_100000_characters_is_refused_and_not_stored(
    login_client: LoginClient,
) -> None:
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    response = send(alice_client, conversation_id, "\U0001f600" * 100_000, "too-long")
    assert_error(response, 413, "text_too_long", fields=("text",))
    assert history(bob_client, conversation_id) == []
    assert unread(bob_client, conversation_id) == 0
    assert not StoredMessageRecord.objects.exists()


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n"])
def test_blank_message_is_refused(login_client: LoginClient, text: str) -> None:
    alice_client, _, _, _, conversation_id = pair(login_client)
    assert_error(send(alice_client, conversation_id, text, "blank"), 400, "invalid_text")
    assert history(alice_client, conversation_id) == []


def test_send_needs_a_client_msg_id_and_text(login_client: LoginClient) -> None:
    alice_client, _, _, _, conversation_id = pair(login_client)
    url = f"{CONVERSATIONS}/{conversation_id}/messages"
    missing = alice_client.post(url, {}, format="json")
    assert_error(missing, 400, "validation_error", fields=("client_msg_id", "text"))
    long_id = alice_client.post(url, {"client_msg_id": "x" * 65, "text": "hi"}, format="json")
    assert_error(long_id, 400, "validation_error", fields=("client_msg_id",))
    assert history(alice_client, conversation_id) == []


def test_non_member_cannot_send_or_read_history(
    login_client: LoginClient,
) -> None:
    alice_client, _, _, _, conversation_id = pair(login_client)
    sent_id(alice_client, conversation_id, "private", "p1")
    outsider, _, _ = login_client()

    assert_error(send(outsider, conversation_id, "let me in", "o1"), 404, "unknown_conversation")
    response = outsider.get(f"{CONVERSATIONS}/{conversation_id}/messages")
    assert_error(response, 404, "unknown_conversation")
    assert_error(send(outsider, 987_654_321, "anyone?", "o2"), 404, "unknown_conversation")
    assert [m["text"] for m in history(alice_client, conversation_id)] == ["private"]


# --- history ----------------------------------------------------------------------------------


def test_history_pages_newest_first_with_before_after_and_limit(
    login_client: LoginClient, settings: Any
) -> None:
    settings.SEND_RATE_LIMIT_PER_10S = 1_000
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    ids = [sent_id(alice_client, conversation_id, f"m{i}", f"c{i}") for i in range(7)]
    assert ids == sorted(ids)

    assert [m["id"] for m in history(bob_client, conversation_id)] == ids[::-1]
    newest = history(bob_client, conversation_id, limit=3)
    assert [m["text"] for m in newest] == ["m6", "m5", "m4"]
    older = history(bob_client, conversation_id, before=newest[-1]["id"], limit=3)
    assert [m["text"] for m in older] == ["m3", "m2", "m1"]
    oldest = history(bob_client, conversation_id, before=older[-1]["id"], limit=3)
    assert [m["text"] for m in oldest] == ["m0"]

    # "after" gives the oldest messages past the cursor, still newest first.
    assert [m["text"] for m in history(bob_client, conversation_id, after=ids[1], limit=2)] == [
        "m3",
        "m2",
    ]
    assert history(bob_client, conversation_id, after=ids[-1]) == []
    between = history(bob_client, conversation_id, after=ids[1], before=ids[4])
    assert [m["text"] for m in between] == ["m3", "m2"]
    assert len(history(bob_client, conversation_id, limit=100)) == 7


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"before": "yesterday"}, "before"),
        ({"after": "1.5"}, "after"),
        ({"after": -1}, "after"),
    ],
)
def test_history_rejects_bad_paging_parameters(
    login_client: LoginClient, params: dict[str, Any], field: str
) -> None:
    alice_client, _, _, _, conversation_id = pair(login_client)
    response = alice_client.get(f"{CONVERSATIONS}/{conversation_id}/messages", params)
    assert_error(response, 400, "validation_error", fields=(field,))


# --- one message: fetch, edit, delete ---------------------------------------------------------


def test_message_detail_has_the_full_text_even_when_live_events_carry_a_preview(
    login_client: LoginClient, settings: Any
) -> None:
    settings.LIVE_EVENT_FULL_TEXT_LIMIT = 10
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    text = "a fairly long message that exceeds the preview"
    message_id = sent_id(alice_client, conversation_id, text, "c1")

    body = bob_client.get(f"/api/v1/messages/{message_id}").json()
    assert body["text"] == text
    assert body["truncated"] is False
    assert body["length"] == len(text)
    preview = bob_client.get(CONVERSATIONS).json()["results"][0]["last_message"]
    assert preview["id"] == message_id
    assert preview["truncated"] is True
    assert text.startswith(preview["text"])


def test_non_member_cannot_fetch_a_message(login_client: LoginClient) -> None:
    alice_client, _, _, _, conversation_id = pair(login_client)
    message_id = sent_id(alice_client, conversation_id, "secret", "c1")
    outsider, _, _ = login_client()
    hidden = assert_error(outsider.get(f"/api/v1/messages/{message_id}"), 404, "unknown_message")
    missing = assert_error(outsider.get("/api/v1/messages/123456789"), 404, "unknown_message")
    assert hidden == missing


def test_sender_edits_their_message_and_everyone_sees_the_new_text(
    login_client: LoginClient,
) -> None:
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    message_id = sent_id(alice_client, conversation_id, "helo", "c1")
    url = f"/api/v1/messages/{message_id}"

    edited = alice_client.patch(url, {"text": "hello"}, format="json")
    assert edited.status_code == 200, edited.content
    assert edited.json()["text"] == "hello"
    assert edited.json()["edited_at"] is not None

    [seen] = history(bob_client, conversation_id)
    assert seen["text"] == "hello"
    assert seen["edited_at"] == edited.json()["edited_at"]
    assert bob_client.get(url).json()["text"] == "hello"

    assert_error(alice_client.patch(url, {"text": "  "}, format="json"), 400, "invalid_text")
    too_long = alice_client.patch(url, {"text": "x" * 100_000}, format="json")
    assert_error(too_long, 413, "text_too_long")
    assert bob_client.get(url).json()["text"] == "hello"


def test_editing_or_deleting_someone_elses_message_is_forbidden(
    login_client: LoginClient,
) -> None:
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    message_id = sent_id(alice_client, conversation_id, "mine", "c1")
    url = f"/api/v1/messages/{message_id}"

    assert_error(bob_client.patch(url, {"text": "yours"}, format="json"), 403, "not_your_message")
    assert_error(bob_client.delete(url), 403, "not_your_message")
    assert alice_client.get(url).json()["text"] == "mine"
    assert_error(
        alice_client.patch("/api/v1/messages/123456789", {"text": "x"}, format="json"),
        404,
        "unknown_message",
    )


def test_deleted_message_leaves_a_tombstone_in_history(login_client: LoginClient) -> None:
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    kept = sent_id(alice_client, conversation_id, "keep me", "c1")
    gone = sent_id(alice_client, conversation_id, "oops, wrong chat", "c2")
    url = f"/api/v1/messages/{gone}"

    deleted = alice_client.delete(url)
    assert deleted.status_code == 204
    assert deleted.content == b""

    page = history(bob_client, conversation_id)
    assert [m["id"] for m in page] == [gone, kept]
    assert page[0]["deleted"] is True
    assert page[0]["text"] == ""
    assert page[1]["deleted"] is False
    assert page[1]["text"] == "keep me"
    assert bob_client.get(url).json()["deleted"] is True
    assert "oops" not in str(bob_client.get(CONVERSATIONS).json())

    assert_error(alice_client.patch(url, {"text": "back"}, format="json"), 409, "message_deleted")


# --- read positions ---------------------------------------------------------------------------


def test_reading_clears_unread_per_user_and_never_moves_back(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    alice_client, _, bob_client, bob, _ = pair(login_client)
    carol_client, carol, _ = login_client()
    response = alice_client.post(
        CONVERSATIONS,
        {"kind": "group", "name": "trio", "member_ids": [bob.pk, carol.pk]},
        format="json",
    )
    conversation_id = response.json()["id"]
    ids = [sent_id(alice_client, conversation_id, f"m{i}", f"c{i}") for i in range(3)]
    assert unread(bob_client, conversation_id) == 3
    assert unread(carol_client, conversation_id) == 3
    assert unread(alice_client, conversation_id) == 0

    assert read(bob_client, conversation_id, ids[0]) == {"last_read_id": ids[0], "unread_count": 2}
    assert read(bob_client, conversation_id, ids[-1]) == {
        "last_read_id": ids[-1],
        "unread_count": 0,
    }
    assert unread(bob_client, conversation_id) == 0
    assert bob_client.get(CONVERSATIONS).json()["results"][0]["last_read_id"] == ids[-1]
    assert unread(carol_client, conversation_id) == 3

    # An older position (another device catching up) does not move the marker back.
    assert read(bob_client, conversation_id, ids[0]) == {
        "last_read_id": ids[-1],
        "unread_count": 0,
    }
    members = {
        m["user_id"]: m["last_read_id"]
        for m in carol_client.get(f"{CONVERSATIONS}/{conversation_id}").json()["members"]
    }
    assert members[bob.pk] == ids[-1]
    assert members[carol.pk] == 0

    # New messages count again from the read position.
    sent_id(carol_client, conversation_id, "more", "c-more")
    assert unread(bob_client, conversation_id) == 1
    assert unread(carol_client, conversation_id) == 3


def test_read_is_refused_for_non_members_and_bad_ids(login_client: LoginClient) -> None:
    alice_client, _, _, _, conversation_id = pair(login_client)
    message_id = sent_id(alice_client, conversation_id, "hi", "c1")
    outsider, _, _ = login_client()
    url = f"{CONVERSATIONS}/{conversation_id}/read"
    forbidden = outsider.post(url, {"message_id": message_id}, format="json")
    assert_error(forbidden, 404, "unknown_conversation")
    for bad in ({}, {"message_id": 0}, {"message_id": "latest"}):
        assert_error(
            alice_client.post(url, bad, format="json"),
            400,
            "validation_error",
            fields=("message_id",),
        )
    assert Membership.objects.filter(last_read_id__gt=0).count() == 0


# --- sync -------------------------------------------------------------------------------------


def test_sync_returns_the_users_events_in_order_and_shows_current_message_state(
    login_client: LoginClient, settings: Any
) -> None:
    settings.SEND_RATE_LIMIT_PER_10S = 1_000
    alice_client, alice, bob_client, bob, conversation_id = pair(login_client)
    first = sent_id(alice_client, conversation_id, "first draft", "c1")
    second = sent_id(bob_client, conversation_id, "reply", "c2")
    edited = alice_client.patch(f"/api/v1/messages/{first}", {"text": "final"}, format="json")
    assert edited.status_code == 200

    page = bob_client.get("/api/v1/sync", {"after": 0}).json()
    events = page["events"]
    assert page["has_more"] is False
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert page["last_seq"] == events[-1]["seq"]
    assert [e["type"] for e in events] == [
        "member.added",
        "message.new",
        "message.new",
        "message.edited",
    ]
    assert events[0]["conversation"]["id"] == conversation_id
    assert sorted(events[0]["user_ids"]) == sorted([alice.pk, bob.pk])
    assert [e["message"]["id"] for e in events[1:]] == [first, second, first]
    # The message as it is now, not as it was sent.
    assert events[1]["message"]["text"] == "final"
    assert events[1]["message"]["edited_at"] is not None

    later = bob_client.get("/api/v1/sync", {"after": 2}).json()
    assert [e["seq"] for e in later["events"]] == [3, 4]
    caught_up = bob_client.get("/api/v1/sync", {"after": page["last_seq"]}).json()
    assert caught_up == {
        "events": [],
        "last_seq": page["last_seq"],
        "has_more": False,
        "reset": False,
    }

    # Another user's queue holds only their own events.
    outsider, _, _ = login_client()
    assert outsider.get("/api/v1/sync", {"after": 0}).json()["events"] == []


def test_sync_pages_with_has_more(login_client: LoginClient, settings: Any) -> None:
    settings.SEND_RATE_LIMIT_PER_10S = 1_000
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    for i in range(5):
        sent_id(alice_client, conversation_id, f"m{i}", f"c{i}")

    cursor, seen = 0, []
    pages = 0
    while True:
        page = bob_client.get("/api/v1/sync", {"after": cursor, "limit": 2}).json()
        pages += 1
        assert len(page["events"]) <= 2
        seen.extend(page["events"])
        cursor = page["last_seq"]
        if not page["has_more"]:
            break
    assert pages == 3
    assert [e["seq"] for e in seen] == [1, 2, 3, 4, 5, 6]
    assert [e["message"]["text"] for e in seen[1:]] == [f"m{i}" for i in range(5)]

    for bad in ({"after": "x"}, {"after": -1}, {"after": 0, "limit": 501}):
        assert_error(bob_client.get("/api/v1/sync", bad), 400, "validation_error")


def test_sync_shows_a_deleted_message_as_a_tombstone(login_client: LoginClient) -> None:
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    message_id = sent_id(alice_client, conversation_id, "regret", "c1")
    assert alice_client.delete(f"/api/v1/messages/{message_id}").status_code == 204
    events = bob_client.get("/api/v1/sync", {"after": 0}).json()["events"]
    assert [e["type"] for e in events] == ["member.added", "message.new", "message.deleted"]
    assert all(e["message"]["text"] == "" for e in events[1:])
    assert all(e["message"]["deleted"] is True for e in events[1:])


# --- rate limit -------------------------------------------------------------------------------


def test_fourth_send_within_ten_seconds_is_rate_limited(
    login_client: LoginClient, settings: Any
) -> None:
    settings.SEND_RATE_LIMIT_PER_10S = 3
    alice_client, _, bob_client, _, conversation_id = pair(login_client)
    # The limit is a fixed 10-second window: do not start right before it rolls over.
    if time.time() % 10 > 8:
        time.sleep(10 - time.time() % 10 + 0.05)

    accepted = [sent_id(alice_client, conversation_id, f"m{i}", f"c{i}") for i in range(3)]
    limited = send(alice_client, conversation_id, "one too many", "c3")
    error = assert_error(limited, 429, "rate_limited")
    assert error["message"]
    retry_after = int(limited["Retry-After"])
    assert 1 <= retry_after <= 10

    assert [m["id"] for m in history(bob_client, conversation_id)] == accepted[::-1]
    assert unread(bob_client, conversation_id) == 3
    assert not StoredMessageRecord.objects.filter(client_msg_id="c3").exists()

    # The limit is per user: bob can still talk.
    assert send(bob_client, conversation_id, "calm down", "b1").status_code == 201


# --- error bodies -----------------------------------------------------------------------------


def test_every_chat_error_response_has_the_documented_body(
    login_client: LoginClient, make_user: MakeUser, api: APIClient
) -> None:
    alice_client, alice, bob_client, bob, conversation_id = pair(login_client)
    message_id = sent_id(alice_client, conversation_id, "hi", "c1")
    outsider, stranger, _ = login_client()
    group = alice_client.post(
        CONVERSATIONS, {"kind": "group", "name": "g", "member_ids": [bob.pk]}, format="json"
    ).json()["id"]

    requests: list[tuple[int, Any]] = [
        (401, api.get(CONVERSATIONS)),
        (401, api.get("/api/v1/sync?after=0")),
        (405, alice_client.put(CONVERSATIONS, {}, format="json")),
        (400, alice_client.post(CONVERSATIONS, "{not json", content_type="application/json")),
        (415, alice_client.post(CONVERSATIONS, "kind=direct", content_type="text/plain")),
        (400, alice_client.post(CONVERSATIONS, {"kind": "group"}, format="json")),
        (400, alice_client.post(CONVERSATIONS, {"kind": "direct", "user_id": alice.pk})),
        (404, alice_client.post(CONVERSATIONS, {"kind": "direct", "user_id": 999_999})),
        (400, alice_client.get(CONVERSATIONS, {"limit": "x"})),
        (404, outsider.get(f"{CONVERSATIONS}/{conversation_id}")),
        (403, bob_client.patch(f"{CONVERSATIONS}/{group}", {"name": "x"}, format="json")),
        (400, alice_client.patch(f"{CONVERSATIONS}/{group}", {"muted": "maybe"}, format="json")),
        (403, bob_client.post(f"{CONVERSATIONS}/{group}/members", {"user_ids": [stranger.pk]})),
        (400, alice_client.delete(f"{CONVERSATIONS}/{conversation_id}/members/{alice.pk}")),
        (403, bob_client.delete(f"{CONVERSATIONS}/{group}/members/{alice.pk}")),
        (404, outsider.get(f"{CONVERSATIONS}/{conversation_id}/messages")),
        (400, alice_client.get(f"{CONVERSATIONS}/{conversation_id}/messages", {"limit": 500})),
        (400, send(alice_client, conversation_id, " ", "blank")),
        (413, send(alice_client, conversation_id, "x" * 100_000, "long")),
        (404, send(outsider, conversation_id, "hi", "o1")),
        (404, outsider.get(f"/api/v1/messages/{message_id}")),
        (403, bob_client.patch(f"/api/v1/messages/{message_id}", {"text": "x"}, format="json")),
        (400, alice_client.patch(f"/api/v1/messages/{message_id}", {}, format="json")),
        (404, alice_client.delete("/api/v1/messages/1")),
        (400, alice_client.post(f"{CONVERSATIONS}/{conversation_id}/read", {}, format="json")),
        (404, outsider.post(f"{CONVERSATIONS}/{conversation_id}/read", {"message_id": 1})),
        (400, alice_client.get("/api/v1/sync", {"after": "soon"})),
    ]
    for expected, response in requests:
        assert response.status_code == expected, (expected, response.status_code, response.content)
        assert_error_shape(response)


def test_ids_beyond_64_bits_are_unknown_not_server_errors(login_client: LoginClient) -> None:
    alice_client, _, _, _, conversation_id = pair(login_client)
    alice_client.raise_request_exception = False
    huge = 10**20
    conversation = f"{CONVERSATIONS}/{huge}"
    # Such ids match no URL (the <id:...> converter): the API's JSON 404.
    path_requests: list[Any] = [
        alice_client.get(f"/api/v1/messages/{huge}"),
        alice_client.patch(f"/api/v1/messages/{huge}", {"text": "x"}),
        alice_client.delete(f"/api/v1/messages/{huge}"),
        alice_client.get(conversation),
        alice_client.patch(conversation, {"muted": True}),
        alice_client.get(f"{conversation}/messages"),
        send(alice_client, huge, "hi", "c1"),
        alice_client.post(f"{conversation}/read", {"message_id": 1}),
        alice_client.post(f"{conversation}/members", {"user_ids": [1]}),
        alice_client.delete(f"{conversation}/members/1"),
    ]
    for response in path_requests:
        assert_error(response, 404, "not_found")

    body_requests: list[tuple[str, Any]] = [
        ("user_id", alice_client.post(CONVERSATIONS, {"kind": "direct", "user_id": huge})),
        (
            "member_ids.0",
            alice_client.post(
                CONVERSATIONS, {"kind": "group", "name": "g", "member_ids": [huge]}, format="json"
            ),
        ),
        (
            "message_id",
            alice_client.post(f"{CONVERSATIONS}/{conversation_id}/read", {"message_id": huge}),
        ),
    ]
    for field, response in body_requests:
        assert_error(response, 400, "validation_error", fields=(field,))
