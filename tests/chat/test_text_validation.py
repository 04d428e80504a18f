"""Text that cannot be stored or that shows as nothing (issue 11, items 6, 13 and 14).

NUL and lone surrogates are refused in every text field with a clear 4xx (or an ``error``
frame) before they reach the database, identically on SQLite and PostgreSQL. Messages and
names made only of invisible characters are blank. Group names refuse control and bidi
characters. Over REST and over the WebSocket alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async as adb
from rest_framework.test import APIClient

from accounts.models import Device, User
from chat.models import Conversation
from chat.services import conversations
from chat.store.models import StoredMessageRecord
from tests.accounts.helpers import assert_error, assert_error_shape
from tests.conftest import PASSWORD

MakeUser = Callable[..., User]
LoginClient = Callable[..., tuple[APIClient, User, str]]

CONVERSATIONS = "/api/v1/conversations"
LONE_SURROGATE = "\\ud800"  # as written inside a JSON string

INVISIBLE_ONLY = [
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # byte order mark
    " \u200c\u00ad\n",  # zero-width non-joiner, soft hyphen, whitespace
    "\u3164",  # Hangul filler
]


def post_raw(client: APIClient, url: str, body: str, method: str = "post") -> Any:
    """Send a JSON body exactly as written (json.dumps cannot write a lone surrogate)."""
    send = getattr(client, method)
    return send(url, data=body.encode(), content_type="application/json")


def direct_id(client: APIClient, other: User) -> int:
    response = client.post(CONVERSATIONS, {"kind": "direct", "user_id": other.pk}, format="json")
    assert response.status_code in (200, 201), response.content
    conversation_id: int = response.json()["id"]
    return conversation_id


# --- REST -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["client_msg_id", "text"])
@pytest.mark.parametrize("bad", ["\\u0000", LONE_SURROGATE])
def test_rest_send_refuses_nul_and_lone_surrogates(
    login_client: LoginClient, make_user: MakeUser, field: str, bad: str
) -> None:
    client, _, _ = login_client()
    conversation_id = direct_id(client, make_user())
    values = {"client_msg_id": "c1", "text": "hello"}
    values[field] = f"a{bad}b"
    body = "{" + ", ".join(f'"{k}": "{v}"' for k, v in values.items()) + "}"
    response = post_raw(client, f"{CONVERSATIONS}/{conversation_id}/messages", body)
    # The code the WebSocket gives for the same mistake.
    code = "invalid_text" if field == "text" else "invalid_client_msg_id"
    assert_error(response, 400, code, (field,))
    assert not StoredMessageRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["\\u0000", LONE_SURROGATE])
def test_rest_edit_refuses_nul_and_lone_surrogates(
    login_client: LoginClient, make_user: MakeUser, bad: str
) -> None:
    client, _, _ = login_client()
    conversation_id = direct_id(client, make_user())
    sent = client.post(
        f"{CONVERSATIONS}/{conversation_id}/messages",
        {"client_msg_id": "c1", "text": "visible"},
        format="json",
    )
    message_id = sent.json()["message"]["id"]
    response = post_raw(
        client, f"/api/v1/messages/{message_id}", f'{{"text": "a{bad}b"}}', method="patch"
    )
    assert_error(response, 400, "invalid_text", ("text",))
    assert [r.text for r in StoredMessageRecord.objects.all()] == ["visible"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/auth/signup", '{"username": "u\\ud800", "password": "%s"}', "username"),
        (
            "/api/v1/auth/signup",
            '{"username": "ulla", "password": "%s", "display_name": "\\udfff"}',
            "display_name",
        ),
        (
            "/api/v1/auth/signup",
            '{"username": "ulla", "password": "%s", "device_name": "ph\\ud800one"}',
            "device_name",
        ),
        ("/api/v1/auth/signup", '{"username": "ulla", "password": "%s\\ud800"}', "password"),
        ("/api/v1/auth/login", '{"username": "ulla\\ud800", "password": "%s"}', "username"),
        ("/api/v1/auth/login", '{"username": "ulla", "password": "%s\\ud800"}', "password"),
    ],
)
def test_rest_account_fields_refuse_lone_surrogates(
    api: APIClient, url: str, body: str, field: str
) -> None:
    response = post_raw(api, url, body % PASSWORD)
    assert_error(response, 400, "validation_error", (field,))
    assert not Device.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("text", INVISIBLE_ONLY)
def test_rest_messages_of_invisible_characters_are_blank_on_send_and_edit(
    login_client: LoginClient, make_user: MakeUser, text: str
) -> None:
    client, _, _ = login_client()
    conversation_id = direct_id(client, make_user())
    url = f"{CONVERSATIONS}/{conversation_id}/messages"
    response = client.post(url, {"client_msg_id": "c1", "text": text}, format="json")
    assert_error(response, 400, "invalid_text", ("text",))

    sent = client.post(url, {"client_msg_id": "c2", "text": "visible"}, format="json")
    assert sent.status_code == 201, sent.content
    message_id = sent.json()["message"]["id"]
    response = client.patch(f"/api/v1/messages/{message_id}", {"text": text}, format="json")
    assert_error(response, 400, "invalid_text", ("text",))
    assert [r.text for r in StoredMessageRecord.objects.all()] == ["visible"]


@pytest.mark.django_db
def test_rest_a_message_with_an_invisible_character_and_a_visible_one_is_kept(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    conversation_id = direct_id(client, make_user())
    response = client.post(
        f"{CONVERSATIONS}/{conversation_id}/messages",
        {"client_msg_id": "c1", "text": "\U0001f469\u200d\U0001f4bb"},  # woman technologist
        format="json",
    )
    assert response.status_code == 201, response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        "\u202eevil",
        "team\u2067x\u2069",
        "\u200b\u200b",
        "\u2060",
        "tab\there",
        "bell\u0007",
    ],
)
def test_rest_group_names_refuse_bidi_controls_and_invisible_names(
    login_client: LoginClient, make_user: MakeUser, name: str
) -> None:
    client, _, _ = login_client()
    other = make_user()
    response = client.post(
        CONVERSATIONS, {"kind": "group", "name": name, "member_ids": [other.pk]}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "name" in assert_error_shape(response)["fields"]
    assert not Conversation.objects.exists()

    created = client.post(
        CONVERSATIONS, {"kind": "group", "name": "Team", "member_ids": [other.pk]}, format="json"
    )
    assert created.status_code == 201, created.content
    conversation_id = created.json()["id"]
    response = client.patch(f"{CONVERSATIONS}/{conversation_id}", {"name": name}, format="json")
    assert response.status_code == 400, response.content
    assert "name" in assert_error_shape(response)["fields"]
    assert Conversation.objects.get(pk=conversation_id).name == "Team"


@pytest.mark.django_db
def test_rest_group_name_with_a_lone_surrogate_is_refused(
    login_client: LoginClient, make_user: MakeUser
) -> None:
    client, _, _ = login_client()
    other = make_user()
    body = f'{{"kind": "group", "name": "te\\udc00am", "member_ids": [{other.pk}]}}'
    assert_error(post_raw(client, CONVERSATIONS, body), 400, "validation_error", ("name",))


@pytest.mark.django_db
def test_services_refuse_spoofing_group_names(make_user: MakeUser) -> None:
    """The admin and any other caller of the service get the same rule as REST."""
    from chatproject.errors import ServiceError

    creator, other = make_user(), make_user()
    with pytest.raises(ServiceError) as refused:
        conversations.create_group(creator, name="\u202eevil", member_ids_=[other.pk])
    assert refused.value.code == "invalid_name"


# --- WebSocket ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_ws_send_refuses_nul_in_client_msg_id_and_text(
    make_user: MakeUser, ws_devices: Any
) -> None:
    alice, bob = await adb(make_user)(), await adb(make_user)()
    conversation, _ = await adb(conversations.get_or_create_direct)(alice, bob.pk)
    phone = await ws_devices(alice, "phone")
    await phone.connect()
    for field, code in (("client_msg_id", "invalid_client_msg_id"), ("text", "invalid_text")):
        frame = {
            "type": "send",
            "conversation_id": conversation.pk,
            "client_msg_id": "c1",
            "text": "hello",
            "ref": field,
        }
        frame[field] = "a\x00b"
        await phone.send(frame)
        error = await phone.receive_type("error")
        assert (error["ref"], error["code"]) == (field, code), error
    assert not await adb(StoredMessageRecord.objects.exists)()
    # The connection is still good.
    sent = await phone.send_text(conversation.pk, "after")
    assert sent["type"] == "sent"
    await phone.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_ws_send_with_a_lone_surrogate_gets_an_error_frame(
    make_user: MakeUser, ws_devices: Any
) -> None:
    alice, bob = await adb(make_user)(), await adb(make_user)()
    conversation, _ = await adb(conversations.get_or_create_direct)(alice, bob.pk)
    phone = await ws_devices(alice, "phone")
    await phone.connect()
    raw = orjson.dumps(
        {"type": "send", "conversation_id": conversation.pk, "client_msg_id": "SURR", "text": "x"}
    ).decode()
    await phone.send(raw.replace("SURR", LONE_SURROGATE))
    error = await phone.receive_type("error")
    assert error["code"] in ("malformed_frame", "invalid_client_msg_id"), error
    assert not await adb(StoredMessageRecord.objects.exists)()
    await phone.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("text", INVISIBLE_ONLY)
async def test_ws_messages_of_invisible_characters_are_blank_on_send_and_edit(
    make_user: MakeUser, ws_devices: Any, text: str
) -> None:
    alice, bob = await adb(make_user)(), await adb(make_user)()
    conversation, _ = await adb(conversations.get_or_create_direct)(alice, bob.pk)
    phone = await ws_devices(alice, "phone")
    await phone.connect()
    await phone.send(
        {
            "type": "send",
            "conversation_id": conversation.pk,
            "client_msg_id": "c1",
            "text": text,
            "ref": "s",
        }
    )
    error = await phone.receive_type("error")
    assert (error["ref"], error["code"]) == ("s", "invalid_text"), error

    sent = await phone.send_text(conversation.pk, "visible")
    await phone.send({"type": "edit", "message_id": sent["message_id"], "text": text, "ref": "e"})
    error = await phone.receive_type("error")
    assert (error["ref"], error["code"]) == ("e", "invalid_text"), error
    texts = await adb(lambda: [r.text for r in StoredMessageRecord.objects.all()])()
    assert texts == ["visible"]
    await phone.disconnect()
