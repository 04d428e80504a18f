"""The pluggable message store: ``get_message_store()`` returns the configured backend
(``settings.MESSAGE_STORE = {"BACKEND": "dotted.Path", "OPTIONS": {}}``, see
chatproject/backends.py)."""

from __future__ import annotations

from chatproject.backends import Backend

from .base import MessageStore

_store: Backend[MessageStore] = Backend("MESSAGE_STORE", base=MessageStore)


def get_message_store() -> MessageStore:
    return _store.get()
