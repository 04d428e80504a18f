"""One send costs the same database queries and Redis round trips for a group of 2 and of 100."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chat.services import conversations, messages

pytestmark = pytest.mark.django_db(transaction=True)


class RedisRoundTrips:
    """Counts requests the real redis-py client writes to the server (pipelines count once)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import redis.connection

        self.count = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(conn, command, check_health)  # type: ignore[no-untyped-call]

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)


def _send_cost(
    sender: User, conversation_id: int, client_msg_id: str, redis_trips: RedisRoundTrips
) -> tuple[int, int]:
    before = redis_trips.count
    with CaptureQueriesContext(connection) as queries:
        messages.send_message(
            sender_id=sender.pk,
            conversation_id=conversation_id,
            client_msg_id=client_msg_id,
            text="hi",
        )
    return len(queries), redis_trips.count - before


def test_send_cost_does_not_grow_with_group_size(
    make_user: Callable[..., User], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_trips = RedisRoundTrips(monkeypatch)
    people = [make_user() for _ in range(100)]
    small = conversations.create_group(people[0], name="two", member_ids_=[people[1].pk])
    large = conversations.create_group(
        people[0], name="hundred", member_ids_=[p.pk for p in people[1:]]
    )
    # Warm caches (id generator, Redis script registration) so both sends take the hot path.
    messages.send_message(
        sender_id=people[0].pk, conversation_id=small.pk, client_msg_id="warm", text="warm"
    )

    small_cost = _send_cost(people[0], small.pk, "s", redis_trips)
    large_cost = _send_cost(people[0], large.pk, "l", redis_trips)

    assert small_cost == large_cost, (
        f"group of 2: {small_cost}, group of 100: {large_cost} (queries, redis)"
    )
    queries, redis_commands = large_cost
    assert queries <= 9
    if settings.REDIS_URL:
        assert redis_commands == 2  # the rate-limit INCR and one routed publish
