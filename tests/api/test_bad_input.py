"""Bad input in the URL gets the same clear 4xx on both databases, in the documented JSON
error body (item 13 of issue 11): a NUL in a search, ids beyond 64 bits, and any 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from accounts.models import User
from chatproject.converters import IdConverter
from tests.accounts.helpers import assert_error

pytestmark = pytest.mark.django_db

LoginClient = Callable[..., tuple[APIClient, User, str]]
TOO_BIG = 2**63  # 9223372036854775808: one past the largest 64-bit signed id


def test_a_nul_in_the_user_search_is_refused(
    login_client: LoginClient, make_user: Callable[..., User]
) -> None:
    make_user("alice")
    make_user("bob")
    client, _, _ = login_client()
    for query in ["\x00", "al\x00ice"]:
        response = client.get("/api/v1/users", {"search": query})
        assert_error(response, 400, "validation_error", fields=("search",))
    # An ordinary search still works.
    assert [u["username"] for u in client.get("/api/v1/users?search=ali").json()["results"]] == [
        "alice"
    ]


def _api_routes() -> Iterator[tuple[str, dict[str, Any]]]:
    """(route, converters) of every URL pattern under /api/v1/."""

    def walk(patterns: list[Any], prefix: str, converters: dict[str, Any]) -> Iterator[Any]:
        for entry in patterns:
            pattern = entry.pattern
            route = prefix + str(pattern)
            found = {**converters, **getattr(pattern, "converters", {})}
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route, found)
            elif isinstance(entry, URLPattern):
                yield route, found

    yield from (
        (route, conv)
        for route, conv in walk(get_resolver().url_patterns, "/", {})
        if route.startswith("/api/v1/")
    )


def test_every_id_in_an_api_path_uses_the_64_bit_id_converter() -> None:
    id_routes = [(route, conv) for route, conv in _api_routes() if conv]
    assert len(id_routes) >= 10, id_routes
    for route, converters in id_routes:
        for name, converter in converters.items():
            assert isinstance(converter, IdConverter), (route, name, converter)


ID_PATHS = [
    ("delete", "/api/v1/contacts/{}"),
    ("get", "/api/v1/users/{}"),
    ("delete", "/api/v1/devices/{}"),
    ("delete", "/api/v1/push/registrations/{}"),
    ("get", "/api/v1/conversations/{}"),
    ("get", "/api/v1/conversations/{}/messages"),
    ("post", "/api/v1/conversations/{}/read"),
    ("delete", "/api/v1/conversations/1/members/{}"),
    ("get", "/api/v1/messages/{}"),
    ("delete", "/api/v1/messages/{}"),
]


@pytest.mark.parametrize(("method", "path"), ID_PATHS)
@pytest.mark.parametrize("bad_id", [TOO_BIG, 10**20, 0])
def test_ids_outside_64_bits_are_a_json_404(
    login_client: LoginClient, method: str, path: str, bad_id: int
) -> None:
    client, _, _ = login_client()
    client.raise_request_exception = False
    response = getattr(client, method)(path.format(bad_id), {}, format="json")
    assert_error(response, 404, "not_found")


def test_the_largest_64_bit_id_is_an_ordinary_unknown_id(login_client: LoginClient) -> None:
    client, _, _ = login_client()
    client.raise_request_exception = False
    assert_error(client.delete(f"/api/v1/contacts/{2**63 - 1}"), 404, "not_found")
    assert_error(client.get(f"/api/v1/users/{2**63 - 1}"), 404, "unknown_user")


def test_an_unknown_api_url_is_a_json_404(login_client: LoginClient) -> None:
    client, _, _ = login_client()
    assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_an_unexpected_failure_under_api_is_a_json_500(
    login_client: LoginClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accounts import services

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated bug")

    # Stands in for any bug: the point is what the client receives when a view fails.
    monkeypatch.setattr(services, "list_contacts", broken)
    client, _, _ = login_client()
    client.raise_request_exception = False
    assert_error(client.get("/api/v1/contacts"), 500, "server_error")
