"""Lookalike usernames and spoofed display names (issue 11, item 6).

A username is one account whatever its case or Unicode form: fullwidth ``alice`` and
``ALICE`` are ``alice``. Names that only look like an existing one (a Cyrillic ``a``, a
dotless ``i``, a dotted capital ``I``) and names mixing scripts are refused. Display names
refuse control and bidi characters and names that are invisible.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from accounts.models import User
from tests.accounts.helpers import LoginClient, MakeUser, assert_error
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"


def sign_up(api: APIClient, username: str, **extra: Any) -> Any:
    return api.post(SIGNUP, {"username": username, "password": PASSWORD, **extra}, format="json")


@pytest.mark.parametrize(
    "lookalike",
    [
        "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth: the same name after NFKC
        "ALICE",
        "Alice",
    ],
)
def test_a_case_or_width_variant_of_a_taken_username_is_taken(
    api: APIClient, make_user: MakeUser, lookalike: str
) -> None:
    make_user("alice")
    assert_error(sign_up(api, lookalike), 409, "username_taken", ("username",))
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "lookalike",
    [
        "\u0430lice",  # Cyrillic a then Latin: mixed scripts
        "al\u0131ce",  # dotless i: Latin only, but looks like alice
        "AL\u0130CE",  # İ lower-cases to i + combining dot
        "a1ice",  # digit one for the letter l
    ],
)
def test_a_username_that_looks_like_a_taken_one_is_refused(
    api: APIClient, make_user: MakeUser, lookalike: str
) -> None:
    make_user("alice")
    response = sign_up(api, lookalike)
    assert response.status_code in (400, 409), response.content
    assert "username" in response.json()["error"]["fields"]
    assert User.objects.count() == 1


def test_a_mixed_script_username_is_refused_even_when_nobody_has_the_latin_one(
    api: APIClient,
) -> None:
    assert_error(sign_up(api, "p\u0430ypal"), 400, "validation_error", ("username",))
    assert not User.objects.exists()


def test_a_username_in_one_other_script_is_welcome(api: APIClient) -> None:
    assert sign_up(api, "\u0438\u0432\u0430\u043d").status_code == 201  # иван
    assert sign_up(api, "\u03b1\u03bb\u03ad\u03be\u03b7\u03c2").status_code == 201  # αλέξης


def test_a_whole_script_lookalike_of_an_existing_name_is_refused(
    api: APIClient, make_user: MakeUser
) -> None:
    make_user("ace")
    response = sign_up(api, "\u0430\u0441\u0435")  # "ace", all Cyrillic
    assert_error(response, 409, "username_confusable", ("username",))


def test_log_in_works_with_any_case_or_width_of_the_username(
    api: APIClient, make_user: MakeUser
) -> None:
    make_user("Alice")
    for typed in ("alice", "ALICE", "\uff21\uff4c\uff49\uff43\uff45"):
        response = api.post(LOGIN, {"username": typed, "password": PASSWORD}, format="json")
        assert response.status_code == 200, (typed, response.content)
        assert response.json()["user"]["username"] == "Alice"


def test_the_service_and_the_model_refuse_lookalikes_too(make_user: MakeUser) -> None:
    """Every path that creates users (admin forms, createsuperuser) goes through the model."""
    make_user("alice")
    lookalike = User(username="al\u0131ce")
    lookalike.set_password(PASSWORD)
    with pytest.raises(ValidationError) as refused:
        lookalike.full_clean()
    assert "username" in refused.value.message_dict


@pytest.mark.parametrize(
    "display_name",
    [
        "\u202eevil",  # right-to-left override
        "bob\u2066x\u2069",  # isolates
        "\u202abob",
        "bob\u0007",  # control character
        "line\nbreak",
        "\u200b\u200d\u2060",  # only invisible characters
        "\ufeff",
        "\u3164",  # Hangul filler, renders blank
    ],
)
def test_spoofing_display_names_are_refused_at_sign_up_and_on_the_profile(
    api: APIClient, login_client: LoginClient, display_name: str
) -> None:
    response = sign_up(api, "mallory", display_name=display_name)
    assert_error(response, 400, "validation_error", ("display_name",))
    client, user, _ = login_client()
    response = client.patch("/api/v1/me", {"display_name": display_name}, format="json")
    assert_error(response, 400, "validation_error", ("display_name",))
    user.refresh_from_db()
    assert user.display_name == ""


def test_ordinary_display_names_are_kept(login_client: LoginClient) -> None:
    client, _, _ = login_client()
    for name in ("Zoë Ångström", "\u05d3\u05d5\u05d3", "\U0001f600 party", ""):
        response = client.patch("/api/v1/me", {"display_name": name}, format="json")
        assert response.status_code == 200, (name, response.content)
        assert response.json()["display_name"] == name


@pytest.mark.parametrize(
    "lookalike", ["\uff41\uff4c\uff49\uff43\uff45", "al\u0131ce", "\u0430lice"]
)
def test_the_admin_add_user_form_refuses_lookalikes(make_user: MakeUser, lookalike: str) -> None:
    from django.test import Client

    make_user("alice")
    staff = make_user("moderator")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    admin = Client()
    admin.force_login(staff)
    response = admin.post(
        "/admin/accounts/user/add/",
        {
            "username": lookalike,
            "password1": "a-strong-passphrase-9",
            "password2": "a-strong-passphrase-9",
            "usable_password": "true",
        },
    )
    assert response.status_code == 200  # the form again, with an error; no 500
    assert User.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_migration_keys_existing_accounts_and_leaves_older_lookalikes_loggable() -> None:
    """Accounts created before keys existed: the oldest of a lookalike pair gets the key,
    the younger keeps logging in by its exact name (and is listed for renaming)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", "0001_initial")])
    old_apps = executor.loader.project_state([("accounts", "0001_initial")]).apps
    old_user_model = old_apps.get_model("accounts", "User")
    original = old_user_model.objects.create(username="Alice")
    lookalike = old_user_model.objects.create(username="al\u0131ce")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert User.objects.get(pk=original.pk).username_key == "alice"
    assert User.objects.get(pk=lookalike.pk).username_key is None
    assert User.objects.get_by_natural_key("ALICE").pk == original.pk
    assert User.objects.get_by_natural_key("al\u0131ce").pk == lookalike.pk
