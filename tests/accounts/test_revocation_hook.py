"""Accounts publishes committed revocations (accounts.hooks); chat closes the sockets.

Accounts sits below chat, so it never calls chat.realtime itself: chat subscribes in its
``AppConfig.ready()``. The ``disconnects`` fixture (conftest) records what chat closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from accounts import hooks, services
from accounts.models import Device

from .conftest import DisconnectCalls
from .helpers import MakeUser


def _device(make_user: MakeUser) -> Device:
    user = make_user()
    return services.issue_device_token(user, device_name="phone", platform="ios").device


@pytest.mark.django_db(transaction=True)
def test_sockets_close_only_once_the_revocation_commits(
    make_user: MakeUser, disconnects: DisconnectCalls
) -> None:
    device = _device(make_user)
    with transaction.atomic():
        services.revoke_device(device)
        assert disconnects.calls == []  # a rolled-back revocation must not cut anyone off
    assert disconnects.calls == [(device.user_id, [device.pk])]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_revocation_closes_nothing(
    make_user: MakeUser, disconnects: DisconnectCalls
) -> None:
    device = _device(make_user)

    def revoke_then_fail() -> None:
        with transaction.atomic():
            services.revoke_all_devices(device.user)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        revoke_then_fail()
    assert disconnects.calls == []


@pytest.mark.django_db(transaction=True)
def test_deleting_a_device_still_names_it_to_the_subscribers(
    make_user: MakeUser, disconnects: DisconnectCalls
) -> None:
    device = _device(make_user)
    device_id = device.pk
    services.delete_device(device)
    assert disconnects.devices_closed() == {device_id}


@pytest.mark.django_db(transaction=True)
def test_a_failing_subscriber_does_not_fail_the_revocation(
    make_user: MakeUser, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[hooks.DevicesRevoked] = []

    def failing(event: hooks.DevicesRevoked) -> None:
        raise ConnectionError("redis is down")

    recording: Callable[[hooks.DevicesRevoked], Any] = seen.append
    monkeypatch.setattr(hooks, "_revoked_handlers", [failing, recording])
    device = _device(make_user)
    services.revoke_device(device)
    device.refresh_from_db()
    assert device.revoked_at is not None
    assert seen == [hooks.DevicesRevoked(user_id=device.user_id, device_ids=(device.pk,))]
    assert "DevicesRevoked subscriber failed" in caplog.text
