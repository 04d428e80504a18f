"""The project starts and the API answers with the documented error body."""

import pytest


@pytest.mark.django_db
def test_me_without_credentials_gets_documented_401_body(api):  # type: ignore[no-untyped-def]
    response = api.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
