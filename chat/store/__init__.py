"""The pluggable message store: ``get_message_store()`` returns the configured backend."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import MessageStore


@cache
def get_message_store() -> MessageStore:
    config = settings.MESSAGE_STORE
    backend_class = import_string(config["BACKEND"])
    store: MessageStore = backend_class(**config.get("OPTIONS", {}))
    return store


@receiver(setting_changed)
def _reset_store(*, setting: str, **kwargs: object) -> None:
    if setting == "MESSAGE_STORE":
        get_message_store.cache_clear()
