"""A client generated from /api/schema/ by a standard generator (openapi-python-client)
works against a live server (issue 11, item 15 (c)): sign up, list conversations, read a
page of history, send a message. Before, the schema described the pages as bare arrays and
a generated client could not read history."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerProcess

from .conftest import PASSWORD, sign_up

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PACKAGE = "chat_api_client"


@pytest.fixture
def generated(served: ServerProcess, tmp_path: Path) -> Iterator[Any]:
    schema = tmp_path / "schema.json"
    schema.write_bytes(httpx.get(served.base_url + "/api/schema/?format=json").content)
    config = tmp_path / "config.yaml"
    # No post hooks: the generator would run ruff over the output, which is not ours.
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            "--path",
            str(schema),
            "--output-path",
            str(tmp_path / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield _Generated()
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class _Generated:
    """Imports of the generated package by name (it does not exist before the fixture)."""

    def __getattr__(self, name: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_signs_up_reads_history_and_sends(
    served: ServerProcess, generated: Any
) -> None:
    models = generated.models
    signup = importlib.import_module(f"{PACKAGE}.api.v1.v1_auth_signup_create")
    list_conversations = importlib.import_module(f"{PACKAGE}.api.v1.v1_conversations_list")
    create_conversation = importlib.import_module(f"{PACKAGE}.api.v1.v1_conversations_create")
    history = importlib.import_module(f"{PACKAGE}.api.v1.v1_conversations_messages_list")
    send = importlib.import_module(f"{PACKAGE}.api.v1.v1_conversations_messages_create")

    anonymous = generated.client.Client(base_url=served.base_url, raise_on_unexpected_status=True)
    created = signup.sync(
        client=anonymous,
        body=models.SignUpRequest(username="gen_alice", password=PASSWORD, device_name="gen"),
    )
    assert isinstance(created, models.TokenResponse), created
    assert created.user.username == "gen_alice"
    alice = generated.client.AuthenticatedClient(
        base_url=served.base_url, token=created.token, raise_on_unexpected_status=True
    )

    # Bob writes to alice first, through the plain HTTP API.
    bob_token = sign_up(served, "gen_bob")
    bob = {"Authorization": f"Bearer {bob_token}"}
    direct = httpx.post(
        served.base_url + "/api/v1/conversations",
        json={"kind": "direct", "user_id": created.user.id},
        headers=bob,
    ).json()
    for index in range(3):
        httpx.post(
            f"{served.base_url}/api/v1/conversations/{direct['id']}/messages",
            json={"client_msg_id": f"b{index}", "text": f"hello {index}"},
            headers=bob,
        ).raise_for_status()

    page = list_conversations.sync(client=alice)
    assert isinstance(page, models.ConversationPage), page
    assert [c.id for c in page.results] == [direct["id"]]
    assert page.has_more is False
    assert page.results[0].last_message.text == "hello 2"
    assert page.results[0].unread_count == 3

    older = history.sync(direct["id"], client=alice, limit=2)
    assert isinstance(older, models.MessagePage), older
    assert [m.text for m in older.results] == ["hello 2", "hello 1"]
    oldest = history.sync(direct["id"], client=alice, before=older.results[-1].id)
    assert [m.text for m in oldest.results] == ["hello 0"]

    sent = send.sync(
        direct["id"], client=alice, body=models.SendRequest(client_msg_id="a1", text="hi bob")
    )
    assert isinstance(sent, models.Sent), sent
    assert sent.duplicate is False
    assert sent.message.text == "hi bob"
    # The same conversation, found by the generated client's "start a direct conversation".
    again = create_conversation.sync_detailed(
        client=alice,
        body=models.CreateConversationRequest(
            kind=models.KindEnum.DIRECT, user_id=bob_user_id(bob, served)
        ),
    )
    assert again.status_code == 200
    assert again.parsed.id == direct["id"]
    newest = history.sync(direct["id"], client=alice, limit=1)
    assert [m.text for m in newest.results] == ["hi bob"]

    # Errors come back as the documented error model.
    missing = history.sync_detailed(2**63 - 1, client=alice)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Error)
    assert missing.parsed.error.code == "unknown_conversation"


def bob_user_id(headers: dict[str, str], server: ServerProcess) -> int:
    user_id: int = httpx.get(server.base_url + "/api/v1/me", headers=headers).json()["id"]
    return user_id
