"""Presence services without sockets: the sweep after a dead process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import User
from presence import services
from presence.models import Presence

pytestmark = pytest.mark.django_db


def test_sweep_stores_last_active_for_everyone_even_if_one_user_was_deleted_meanwhile(
    make_user: Callable[..., User], settings: Any
) -> None:
    settings.PRESENCE_TIMEOUT = 0.05
    settings.PRESENCE_TICK = 0.001
    kept, deleted = make_user(), make_user()
    for user in (kept, deleted):
        services.connection_opened(user_id=user.pk, member=f"1/dead{user.pk}")
    deleted_id = deleted.pk
    deleted.delete()
    time.sleep(0.1)  # the process holding them died: their leases expire

    gone = services.sweep_expired()
    assert sorted(gone) == sorted([kept.pk, deleted_id])
    stored = Presence.objects.get(user_id=kept.pk)
    assert stored.last_active_at is not None
    assert abs(stored.last_active_at.timestamp() - time.time()) < 1
    assert not Presence.objects.filter(user_id=deleted_id).exists()
    assert services.sweep_expired() == []  # each transition is reported once
