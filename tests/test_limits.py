"""Each protocol limit is defined once (chatproject/limits.py); every layer that checks it
refuses one past it and accepts the limit itself."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chat import protocol
from chat.serializers import ReadSerializer, SendSerializer
from chat.store.models import StoredMessageRecord
from chatproject.converters import IdConverter
from chatproject.limits import MAX_CLIENT_MSG_ID_LENGTH, MAX_ID, SYNC_PAGE_MAX


def test_id_bound_is_the_largest_64_bit_signed_integer() -> None:
    assert MAX_ID == 9_223_372_036_854_775_807


def test_path_converter_accepts_up_to_max_id() -> None:
    converter = IdConverter()
    assert converter.to_python(str(MAX_ID)) == MAX_ID
    with pytest.raises(ValueError, match="id out of range"):
        converter.to_python(str(MAX_ID + 1))


def test_frames_accept_up_to_max_id() -> None:
    protocol.ReadFrame(type="read", conversation_id=MAX_ID, message_id=MAX_ID)
    protocol.AckFrame(type="ack", seq=MAX_ID)
    with pytest.raises(ValidationError):
        protocol.ReadFrame(type="read", conversation_id=1, message_id=MAX_ID + 1)
    with pytest.raises(ValidationError):
        protocol.AckFrame(type="ack", seq=MAX_ID + 1)


def test_serializers_accept_up_to_max_id() -> None:
    assert ReadSerializer(data={"message_id": MAX_ID}).is_valid()
    assert not ReadSerializer(data={"message_id": MAX_ID + 1}).is_valid()


def test_client_msg_id_length_is_the_same_in_every_layer() -> None:
    longest, too_long = "x" * MAX_CLIENT_MSG_ID_LENGTH, "x" * (MAX_CLIENT_MSG_ID_LENGTH + 1)
    protocol.SendFrame(type="send", conversation_id=1, client_msg_id=longest, text="hi")
    with pytest.raises(ValidationError):
        protocol.SendFrame(type="send", conversation_id=1, client_msg_id=too_long, text="hi")
    assert SendSerializer(data={"client_msg_id": longest, "text": "hi"}).is_valid()
    assert not SendSerializer(data={"client_msg_id": too_long, "text": "hi"}).is_valid()
    field = StoredMessageRecord._meta.get_field("client_msg_id")
    assert field.max_length == MAX_CLIENT_MSG_ID_LENGTH


def test_sync_page_limit() -> None:
    assert protocol.SyncFrame(type="sync", limit=SYNC_PAGE_MAX).limit == SYNC_PAGE_MAX
    with pytest.raises(ValidationError):
        protocol.SyncFrame(type="sync", limit=SYNC_PAGE_MAX + 1)
