"""notifications subscribes to chat's post-commit hooks (chat never imports notifications)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from chat import hooks
from notifications import services


def test_each_chat_hook_reaches_its_push_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {
        name: mock.Mock() for name in ("messages_stored", "conversation_read", "device_unacked")
    }
    for name, fake in calls.items():
        monkeypatch.setattr(services, name, fake)
    message: Any = object()
    hooks.publish(hooks.MessagesStored([hooks.StoredDelivery(message, {7: 1}, [7])]))
    hooks.publish(hooks.ConversationRead(user_id=7, conversation_id=3, last_read_id=9))
    hooks.publish(
        hooks.DeliveryUnacknowledged(user_id=7, device_id=5, acked_seq=2, delivered_seq=4)
    )
    calls["messages_stored"].assert_called_once_with([(message, {7: 1}, [7])])
    calls["conversation_read"].assert_called_once_with(user_id=7, conversation_id=3, last_read_id=9)
    calls["device_unacked"].assert_called_once_with(
        user_id=7, device_id=5, acked_seq=2, delivered_seq=4
    )
