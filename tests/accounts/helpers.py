"""Small helpers shared by the accounts tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.test import APIClient

from accounts.models import User

MakeUser = Callable[..., User]
LoginClient = Callable[..., tuple[APIClient, User, str]]


def assert_error_shape(response: Any) -> dict[str, Any]:
    """The documented error body: {"error": {"code", "message", "fields"}}; returns "error"."""
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert isinstance(error["fields"], dict)
    for name, problems in error["fields"].items():
        assert isinstance(name, str)
        assert isinstance(problems, list)
        assert problems
        assert all(isinstance(problem, str) for problem in problems)
    return dict(error)


def assert_error(
    response: Any, status: int, code: str, fields: tuple[str, ...] = ()
) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    error = assert_error_shape(response)
    assert error["code"] == code, error
    for name in fields:
        assert name in error["fields"], error
    return error


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client
