"""REST presence for clients that poll, and the setting to hide one's presence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Contact, User
from chat.services import conversations
from presence import services
from presence.backends import Lease, get_backend

pytestmark = pytest.mark.django_db

LoginClient = Callable[..., tuple[APIClient, User, str]]


def _online(user: User) -> None:
    import time

    get_backend().connect(
        Lease(user_id=user.pk, member=f"1/test{user.pk}", expiry=time.time() + 60), now=time.time()
    )


def test_presence_of_related_users_online_offline_and_strangers_without_status(
    login_client: LoginClient, make_user: Callable[..., User]
) -> None:
    client, viewer, _ = login_client()
    contact, partner, groupmate, stranger = (make_user() for _ in range(4))
    Contact.objects.create(owner=viewer, contact=contact)
    conversations.get_or_create_direct(viewer, partner.pk)
    conversations.create_group(viewer, name="g", member_ids_=[groupmate.pk])
    _online(contact)
    _online(groupmate)
    _online(stranger)
    services.connection_closed(user_id=partner.pk, member="x", last_frame_at=0)
    _online(partner)
    get_backend().disconnect(partner.pk, f"1/test{partner.pk}", now=1e10)  # never seen

    ids = [contact.pk, partner.pk, groupmate.pk, stranger.pk, viewer.pk, 999_999]
    response = client.get("/api/v1/presence", {"ids": ",".join(map(str, ids))})
    assert response.status_code == 200, response.json()
    by_id = {entry["user_id"]: entry for entry in response.json()["results"]}
    assert by_id[contact.pk]["status"] == "online"
    assert by_id[groupmate.pk]["status"] == "online"  # group members may poll each other
    assert by_id[partner.pk] == {"user_id": partner.pk, "status": "offline", "last_active_at": None}
    # Presence is not public: an unrelated user looks like one who hides it.
    assert by_id[stranger.pk] == {"user_id": stranger.pk, "status": None, "last_active_at": None}
    assert by_id[999_999]["status"] is None
    assert by_id[viewer.pk]["status"] == "offline"


def test_hidden_users_show_no_status_and_no_last_active(
    login_client: LoginClient, make_user: Callable[..., User]
) -> None:
    client, viewer, _ = login_client()
    hider_client, hider, _ = login_client()
    Contact.objects.create(owner=viewer, contact=hider)
    _online(hider)
    assert hider_client.get("/api/v1/presence/settings").json() == {"hidden": False}
    response = hider_client.patch("/api/v1/presence/settings", {"hidden": True})
    assert response.json() == {"hidden": True}
    assert hider_client.get("/api/v1/presence/settings").json() == {"hidden": True}

    (entry,) = client.get("/api/v1/presence", {"ids": str(hider.pk)}).json()["results"]
    assert entry == {"user_id": hider.pk, "status": None, "last_active_at": None}
    # The user still sees their own.
    (own,) = hider_client.get("/api/v1/presence", {"ids": str(hider.pk)}).json()["results"]
    assert own["status"] == "online"


@pytest.mark.parametrize(
    ("ids", "code"),
    [
        (",".join(str(i) for i in range(1, 202)), "too_many_users"),
        (",".join(str(i) for i in range(1, 5001)), "too_many_users"),
        ("", "validation_error"),
        ("1,two", "validation_error"),
        ("0", "validation_error"),
        (str(2**64), "validation_error"),
    ],
)
def test_bad_or_oversized_presence_queries_are_refused_with_a_clear_error(
    login_client: LoginClient, ids: str, code: str
) -> None:
    client, _, _ = login_client()
    response = client.get("/api/v1/presence", {"ids": ids})
    assert response.status_code == 400
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code
    assert "ids" in body["fields"]


def test_200_users_is_allowed_and_costs_a_fixed_number_of_queries(
    login_client: LoginClient, django_assert_max_num_queries: Any
) -> None:
    client, _, _ = login_client()
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/presence", {"ids": ",".join(map(str, range(1, 201)))})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 200


def test_presence_needs_authentication(api: APIClient) -> None:
    assert api.get("/api/v1/presence", {"ids": "1"}).status_code in (401, 403)
