"""The one pattern for pluggable backends (chatproject/backends.py) and its three users: the
message store (``MESSAGE_STORE``), presence (``PRESENCE_BACKEND``) and the id generator
(``ID_GENERATOR_BACKEND``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from chat import ids
from chat.ids import LEASE_KEY_PREFIX, SnowflakeGenerator, next_id, worker_id_of
from chat.store import get_message_store
from chat.store.django_store import DjangoMessageStore
from chatproject.backends import Backend
from chatproject.redis_connections import connections
from presence.backends import get_backend
from presence.backends.memory import MemoryPresence
from presence.backends.redis import RedisPresence

# --- the pattern ---------------------------------------------------------------------------


class Widget:
    closed = False

    def __init__(self, colour: str = "grey") -> None:
        self.colour = colour

    def close(self) -> None:
        self.closed = True


class BlueWidget(Widget):
    def __init__(self) -> None:
        super().__init__("blue")


def _close(widget: Widget) -> None:
    widget.close()


WIDGETS: Backend[Widget] = Backend(
    "TEST_WIDGET", base=Widget, reset_on={"TEST_WIDGET_SIZE"}, close=_close
)


@override_settings(TEST_WIDGET="tests.test_backends.Widget")
def test_the_setting_names_the_class_made_once_per_process() -> None:
    widget = WIDGETS.get()
    assert type(widget) is Widget
    assert WIDGETS.get() is widget


def test_a_dict_setting_passes_its_options() -> None:
    with override_settings(
        TEST_WIDGET={"BACKEND": "tests.test_backends.Widget", "OPTIONS": {"colour": "red"}}
    ):
        assert WIDGETS.get().colour == "red"


def test_changing_the_setting_makes_the_new_backend_and_closes_the_old() -> None:
    with override_settings(TEST_WIDGET="tests.test_backends.Widget"):
        grey = WIDGETS.get()
        with override_settings(TEST_WIDGET="tests.test_backends.BlueWidget"):
            assert WIDGETS.get().colour == "blue"
        assert grey.closed
        again = WIDGETS.get()
        assert type(again) is Widget
        assert again is not grey
        # A setting the backend depends on resets it too.
        with override_settings(TEST_WIDGET_SIZE=3):
            assert WIDGETS.get() is not again


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tests.test_backends.NoSuchWidget", "TEST_WIDGET: cannot import"),
        ("no_such_module.Widget", "TEST_WIDGET: cannot import"),
        ("notadottedpath", "TEST_WIDGET: cannot import"),
        ("tests.test_backends.Backend", "TEST_WIDGET: .* is not a subclass of Widget"),
        ({"OPTIONS": {}}, "TEST_WIDGET must be a dotted path"),
        (None, "TEST_WIDGET must be a dotted path"),
    ],
)
def test_a_wrong_setting_is_improperly_configured(value: object, message: str) -> None:
    with override_settings(TEST_WIDGET=value), pytest.raises(ImproperlyConfigured, match=message):
        WIDGETS.get()


# --- the message store ---------------------------------------------------------------------


class LabelledStore(DjangoMessageStore):
    pass


def test_message_store_is_chosen_by_its_dotted_path_with_options() -> None:
    default = get_message_store()
    assert type(default) is DjangoMessageStore
    assert get_message_store() is default
    store_setting = {"BACKEND": "tests.test_backends.LabelledStore", "OPTIONS": {"DATABASE": "x"}}
    with override_settings(MESSAGE_STORE=store_setting):
        store = get_message_store()
        assert type(store) is LabelledStore
        assert store.using == "x"
    assert type(get_message_store()) is DjangoMessageStore


def test_message_store_with_a_wrong_path_is_improperly_configured() -> None:
    with (
        override_settings(MESSAGE_STORE={"BACKEND": "chat.store.nowhere.Store"}),
        pytest.raises(ImproperlyConfigured, match="MESSAGE_STORE: cannot import"),
    ):
        get_message_store()


# --- presence ------------------------------------------------------------------------------


class QuietPresence(MemoryPresence):
    pass


def test_presence_backend_follows_the_configuration_and_its_setting() -> None:
    configured = RedisPresence if django_settings.REDIS_URL else MemoryPresence
    assert type(get_backend()) is configured
    assert get_backend() is get_backend()
    with override_settings(PRESENCE_BACKEND="tests.test_backends.QuietPresence"):
        assert type(get_backend()) is QuietPresence
    assert type(get_backend()) is configured


def test_presence_backend_must_be_a_presence_backend() -> None:
    with (
        override_settings(PRESENCE_BACKEND="chat.store.django_store.DjangoMessageStore"),
        pytest.raises(ImproperlyConfigured, match="not a subclass of PresenceBackend"),
    ):
        get_backend()


# --- the id generator ----------------------------------------------------------------------


class Worker5Generator(SnowflakeGenerator):
    def __init__(self) -> None:
        super().__init__(5)


def test_id_generator_is_chosen_by_its_dotted_path() -> None:
    with override_settings(ID_GENERATOR_BACKEND="tests.test_backends.Worker5Generator"):
        assert isinstance(ids.default_generator(), Worker5Generator)
        assert worker_id_of(next_id()) == 5
    assert not isinstance(ids.default_generator(), Worker5Generator)


def test_id_generator_with_a_wrong_path_is_improperly_configured() -> None:
    with (
        override_settings(ID_GENERATOR_BACKEND="chat.ids.NoSuchGenerator"),
        pytest.raises(ImproperlyConfigured, match="ID_GENERATOR_BACKEND: cannot import"),
    ):
        next_id()


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL")
def test_a_changed_id_setting_gives_back_the_leased_worker_number(settings: Any) -> None:
    settings.ID_WORKER_ID = -1
    leased = worker_id_of(next_id())
    client = connections.new_sync_client()
    try:
        assert client.exists(f"{LEASE_KEY_PREFIX}{leased}") == 1
        settings.ID_WORKER_ID = 9
        assert client.exists(f"{LEASE_KEY_PREFIX}{leased}") == 0
        assert worker_id_of(next_id()) == 9
    finally:
        client.close()
