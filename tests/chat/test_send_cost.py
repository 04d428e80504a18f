"""One send costs the same database queries and Redis round trips for a group of 2 and of 100
(on a Redis Cluster: round trips bounded by the number of masters, whatever the group)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chat.services import conversations, messages
from chatproject.errors import ServiceError
from tests.redis_servers import servers

pytestmark = pytest.mark.django_db(transaction=True)


class RedisRoundTrips:
    """Counts requests the real redis-py client writes to the app's Redis database (pipelines
    count once). The Celery broker's traffic (push notification tasks, queued only for
    offline recipients) is another service and is not counted here."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import redis.connection

        self.count = 0
        original = redis.connection.AbstractConnection.send_packed_command
        app_db = int(urlsplit(django_settings.REDIS_URL).path.strip("/") or 0)

        def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            if getattr(conn, "db", 0) == app_db:
                self.count += 1
            original(conn, command, check_health)  # type: ignore[no-untyped-call]

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)


def masters() -> int:
    """How many servers hold the app's keys: 1, or the masters of the cluster."""
    with servers() as clients:
        return len(clients)


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

    costs = f"group of 2: {small_cost}, group of 100: {large_cost} (queries, redis)"
    queries, redis_commands = large_cost
    assert small_cost[0] == queries, costs
    # The membership read; in the transaction, the conversation lock (ids are taken under
    # it), the store's three statements and the two counting updates; transaction control.
    assert queries <= 9
    if settings.REDIS_CLUSTER:
        # The sender's rate limit (one key), then the recipients' route sets read per
        # bucket: one pipeline, a round trip per master (nobody is connected: nothing to
        # publish).
        assert redis_commands <= 1 + masters(), costs
    elif settings.REDIS_URL:
        assert small_cost == large_cost, costs
        assert redis_commands == 2  # the rate-limit INCR and one routed publish


def test_a_batch_of_sends_costs_the_queries_and_round_trips_of_one(
    make_user: Callable[..., User], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_trips = RedisRoundTrips(monkeypatch)
    people = [make_user() for _ in range(41)]
    pairs = [conversations.get_or_create_direct(people[0], p.pk)[0] for p in people[1:]]
    group = conversations.create_group(
        people[0], name="forty", member_ids_=[p.pk for p in people[1:]]
    )
    messages.send_message(
        sender_id=people[0].pk, conversation_id=group.pk, client_msg_id="warm", text="warm"
    )

    def cost(requests: list[messages.SendRequest]) -> tuple[int, int]:
        before = redis_trips.count
        with CaptureQueriesContext(connection) as queries:
            outcomes = messages.send_messages(requests)
        assert all(isinstance(o, messages.SendResult) for o in outcomes), outcomes
        return len(queries), redis_trips.count - before

    one = cost([messages.SendRequest(people[0].pk, group.pk, "one", "hi")])
    many = cost(
        [
            messages.SendRequest(p.pk, c.pk, f"m{p.pk}", "hi")
            for p, c in zip(people[1:], pairs, strict=True)
        ]
        + [messages.SendRequest(p.pk, group.pk, f"g{p.pk}", "hi") for p in people[1:]]
    )

    costs = f"one send: {one}, 80 sends: {many} (queries, redis)"
    if settings.REDIS_CLUSTER:
        # Rate limits and route reads: one pipeline each, a round trip per master at most.
        assert many[0] == one[0], costs
        assert many[1] <= 2 * masters(), costs
    else:
        assert many == one, costs


def test_on_postgresql_a_sends_writes_go_out_together_in_pipeline_mode(
    make_user: Callable[..., User],
) -> None:
    """Round trips, not statements, are what a send waits for: on PostgreSQL the writes
    whose results nobody reads share a round trip with the next statement read."""
    if connection.vendor != "postgresql":
        pytest.skip("pipeline mode is psycopg's (PostgreSQL)")
    from psycopg import pq

    alice, bob = make_user(), make_user()
    direct, _ = conversations.get_or_create_direct(alice, bob.pk)
    statements: list[tuple[str, bool]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        status = context["connection"].connection.pgconn.pipeline_status
        statements.append((sql.split(maxsplit=1)[0], status != pq.PipelineStatus.OFF))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        messages.send_message(
            sender_id=alice.pk, conversation_id=direct.pk, client_msg_id="p", text="hi"
        )

    writes = [pipelined for verb, pipelined in statements if verb in ("INSERT", "UPDATE")]
    assert len(writes) >= 4, statements  # counters, message, entries, counts
    assert all(writes), statements
    # Outside the pipeline: only the reads before the transaction (revocation, members).
    assert sum(not pipelined for _, pipelined in statements) <= 2, statements


def test_a_batch_answers_each_send_on_its_own(
    make_user: Callable[..., User], settings: Any
) -> None:
    settings.SEND_RATE_LIMIT_PER_10S = 3
    alice, bob, outsider = make_user(), make_user(), make_user()
    conversation, _ = conversations.get_or_create_direct(alice, bob.pk)
    request = messages.SendRequest

    outcomes = messages.send_messages(
        [
            request(alice.pk, conversation.pk, "a1", "first"),
            request(outsider.pk, conversation.pk, "x1", "let me in"),
            request(alice.pk, conversation.pk, "a2", "x" * (settings.MAX_MESSAGE_LENGTH + 1)),
            request(bob.pk, conversation.pk, "b1", "reply"),
            request(alice.pk, conversation.pk, "a3", "second"),
            request(alice.pk, conversation.pk, "a4", "third"),
            request(alice.pk, conversation.pk, "a5", "one too many"),
            request(bob.pk, conversation.pk, "b1", "reply, retried in the same batch"),
        ]
    )

    kinds = [o.code if isinstance(o, ServiceError) else "sent" for o in outcomes]
    assert kinds == [
        "sent",
        "unknown_conversation",
        "text_too_long",
        "sent",
        "sent",
        "sent",
        "rate_limited",
        "sent",
    ]
    sent = [o for o in outcomes if isinstance(o, messages.SendResult)]
    assert sent[-1].duplicate
    assert sent[-1].message.id == sent[1].message.id
    history = messages.history_page(bob.pk, conversation.pk, before=None, after=None, limit=10)
    assert [m.text for m in reversed(history)] == ["first", "reply", "second", "third"]


def test_acks_of_many_devices_cost_the_queries_of_one_and_move_every_cursor(
    make_user: Callable[..., User],
) -> None:
    from accounts import services as account_services
    from chat.models import DeviceSyncState, Membership
    from chat.services import sync

    sender = make_user()
    # Up to DELIVERY_ROWS_PER_STATEMENT markers move in one statement (each commits alone).
    readers = [make_user() for _ in range(sync.DELIVERY_ROWS_PER_STATEMENT)]
    devices = [
        account_services.issue_device_token(r, device_name="phone", platform="ios").device.pk
        for r in readers
    ]
    chats = [conversations.get_or_create_direct(sender, r.pk)[0] for r in readers]
    sent = [
        messages.send_message(
            sender_id=sender.pk, conversation_id=c.pk, client_msg_id=f"c{c.pk}", text="hi"
        )
        for c in chats
    ]
    last_seqs = sync.hello_states([(r.pk, d) for r, d in zip(readers, devices, strict=True)])

    def ack_cost(acks: list[sync.Ack]) -> int:
        with CaptureQueriesContext(connection) as queries:
            sync.acknowledge_many(acks)
        return len(queries)

    one = ack_cost([sync.Ack(readers[0].pk, devices[0], last_seqs[0][0], 0)])
    many = ack_cost(
        [
            sync.Ack(r.pk, d, seq, 0)
            for r, d, (seq, _) in zip(readers[1:], devices[1:], last_seqs[1:], strict=True)
        ]
    )

    assert many == one
    cursors = dict(DeviceSyncState.objects.values_list("device_id", "delivered_seq"))
    assert [cursors[d] for d in devices] == [seq for seq, _ in last_seqs]
    delivered = dict(
        Membership.objects.filter(user__in=readers).values_list("user_id", "last_delivered_id")
    )
    assert [delivered[r.pk] for r in readers] == [s.message.id for s in sent]


def test_a_batch_counts_unread_per_member_minus_their_own(
    make_user: Callable[..., User],
) -> None:
    from chat.models import Conversation, Membership

    ann, ben, cat = make_user(), make_user(), make_user()
    group = conversations.create_group(ann, name="g", member_ids_=[ben.pk, cat.pk])
    request = messages.SendRequest

    outcomes = messages.send_messages(
        [
            request(ann.pk, group.pk, "a1", "one"),
            request(ben.pk, group.pk, "b1", "two"),
            request(ann.pk, group.pk, "a2", "three"),
        ]
    )

    unread = dict(
        Membership.objects.filter(conversation=group).values_list("user_id", "unread_count")
    )
    assert unread == {ann.pk: 1, ben.pk: 2, cat.pk: 3}
    newest = max(o.message.id for o in outcomes if isinstance(o, messages.SendResult))
    assert Conversation.objects.get(pk=group.pk).last_message_id == newest
