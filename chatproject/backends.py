"""One pattern for every pluggable backend (the message store, presence, the id generator).

As with Django's ``STORAGES`` and ``CACHES``: a setting names the backend class by dotted
path, the instance is made once per process on first use, and a change of that setting
(``override_settings``, pytest-django's ``settings`` fixture) drops it, so the next use
makes the newly configured one. The setting is either a dotted path or a dict
``{"BACKEND": "dotted.Path", "OPTIONS": {...}}`` whose options are passed to the class.

A wrong path is an ``ImproperlyConfigured`` naming the setting, at first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

T = TypeVar("T")


def _path_and_options(setting: str, value: object) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("BACKEND"), str):
        return value["BACKEND"], dict(value.get("OPTIONS") or {})
    raise ImproperlyConfigured(
        f'{setting} must be a dotted path or {{"BACKEND": "dotted.Path", "OPTIONS": {{}}}}, '
        f"not {value!r}"
    )


class Backend(Generic[T]):
    """The process's instance of the backend ``setting`` names (a subclass of ``base``).

    ``reset_on``: further settings the instance depends on (a change drops it too).
    ``close``: called with a dropped instance (releases what it holds). A forked child
    forgets the parent's instance without closing it (it is still the parent's) and makes
    its own.
    """

    def __init__(
        self,
        setting: str,
        *,
        base: type,  # type[T] would refuse abstract base classes (mypy's type-abstract)
        reset_on: Iterable[str] = (),
        close: Callable[[T], None] | None = None,
    ) -> None:
        self.setting = setting
        self._base = base
        self._reset_on = {setting, *reset_on}
        self._close = close
        self._lock = threading.Lock()
        self._instance: T | None = None
        setting_changed.connect(self._on_setting_changed, weak=False)
        os.register_at_fork(after_in_child=self._forget_in_child)

    def get(self) -> T:
        instance = self._instance
        if instance is None:
            with self._lock:
                if self._instance is None:
                    self._instance = self._create()
                instance = self._instance
        return instance

    def reset(self) -> None:
        """Drop (and close) the instance; the next :meth:`get` makes a new one."""
        with self._lock:
            instance, self._instance = self._instance, None
        if instance is not None and self._close is not None:
            self._close(instance)

    def _create(self) -> T:
        path, options = _path_and_options(self.setting, getattr(settings, self.setting, None))
        try:
            backend_class = import_string(path)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"{self.setting}: cannot import {path!r} ({error})"
            ) from error
        if not (isinstance(backend_class, type) and issubclass(backend_class, self._base)):
            raise ImproperlyConfigured(
                f"{self.setting}: {path} is not a subclass of {self._base.__qualname__}"
            )
        return cast(T, backend_class(**options))

    def _on_setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting in self._reset_on:
            self.reset()

    def _forget_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._instance = None
