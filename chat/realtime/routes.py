"""Where a user's live connections are: the route table in Redis.

Each server process subscribes to one channel of its own and keeps, per user it has
connections for, its process id in that user's route set. Keys (``chatproject/redis_keys``):

* ``{rt:<b>}:user:<user id>``: the route set (process ids) of a user, in bucket
  ``b = user id % USER_BUCKETS``: the route sets of one bucket share a cluster slot, so
  one script reads all the recipients of a bucket.
* ``rt:proc:{<process id>}``: the process's channel, tagged by the process id, so the
  channels (and their subscribers) spread over the cluster's masters.

Publishing an event, single Redis: one round trip. :data:`ROUTE_AND_PUBLISH_LUA` unions the
recipients' route sets and publishes the envelope once to each process that has any of
them, except the publishing process itself, which hands the event to its own hub in
memory (no round trip through its own subscription). When a publish reaches no
subscriber, that process is gone (crashed without cleaning up), and the script drops it
from the sets it came from, so dead routes cost at most one wasted publish.

On a Redis Cluster (``REDIS_CLUSTER``) a script cannot publish to a sharded channel of
another slot, and a plain ``PUBLISH`` is broadcast to every node (and counts only the
subscribers of the node it ran on, so dead routes could not be told). So routing is done
in steps, each one pipeline (one round trip per master, in parallel):

1. :data:`RESOLVE_ROUTES_LUA` once per bucket of the recipients: which processes hold
   which of them;
2. ``SPUBLISH`` of the envelope once to each of those processes' channels (processes
   subscribe with ``SSUBSCRIBE``, on the master of their channel's slot);
3. only when a ``SPUBLISH`` reached no subscriber: ``SREM`` of that process from the
   route sets it came from (a dead process, or one whose subscription is moving; a live
   one re-announces its routes when it subscribes again).

A message to a group of any size costs at most ``2 x masters`` round trips
(``3 x masters`` with dead routes), the publishing process's own recipients none.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatproject.redis_connections import ScriptCall
from chatproject.redis_keys import bucket_of, positions_by_bucket, tag

ROUTES_NAMESPACE = "rt"

# KEYS: route sets. Leaves `targets` (process id -> 1-based indexes of the KEYS it holds)
# and `order` (the process ids, in the order first seen).
_COLLECT_LUA = """
local targets = {}
local order = {}
for index, key in ipairs(KEYS) do
    for _, process in ipairs(redis.call('SMEMBERS', key)) do
        local indexes = targets[process]
        if indexes == nil then
            indexes = {}
            targets[process] = indexes
            order[#order + 1] = process
        end
        indexes[#indexes + 1] = index
    end
end
"""

# Cluster, per bucket. KEYS: route sets of one bucket's recipients (one slot). Returns
# {process id, {1-based indexes of the KEYS it holds}, process id, {...}, ...}.
RESOLVE_ROUTES_LUA = (
    _COLLECT_LUA
    + """
local reply = {}
for _, process in ipairs(order) do
    reply[#reply + 1] = process
    reply[#reply + 1] = targets[process]
end
return reply
"""
)

# Single Redis. KEYS: route set of each recipient. ARGV[1]: the envelope; ARGV[2..]: the
# ids of the calling process's own hubs, which get the event in memory rather than through
# Redis. Returns {1-based indexes of the KEYS whose user no live process holds (offline
# users: push notification work), the caller's own hubs that hold recipients}.
ROUTE_AND_PUBLISH_LUA = (
    """
local mine = {}
for index = 2, #ARGV do
    mine[ARGV[index]] = true
end
"""
    + _COLLECT_LUA
    + """
local online = {}
local own = {}
for _, process in ipairs(order) do
    local reached = mine[process]
    if reached then
        own[#own + 1] = process
    else
        reached = redis.call('PUBLISH', 'rt:proc:{' .. process .. '}', ARGV[1]) > 0
    end
    if reached then
        for _, index in ipairs(targets[process]) do
            online[index] = true
        end
    else
        for _, index in ipairs(targets[process]) do
            redis.call('SREM', KEYS[index], process)
        end
    end
end
local offline = {}
for index = 1, #KEYS do
    if not online[index] then
        offline[#offline + 1] = index
    end
end
return {offline, own}
"""
)


def user_route_key(user_id: int) -> str:
    return f"{tag(ROUTES_NAMESPACE, bucket_of(user_id))}:user:{user_id}"


def process_channel(process_id: str) -> str:
    return f"rt:proc:{{{process_id}}}"


@dataclass(frozen=True, slots=True)
class Routed:
    """Where one event went: its recipients no live process holds, and this process's own
    hubs that hold recipients (they get the event in memory)."""

    offline_user_ids: list[int]
    own_process_ids: list[bytes]


def single_redis_call(user_ids: Sequence[int], data: bytes, own: Collection[bytes]) -> ScriptCall:
    """The one script call that routes an event on a single Redis."""
    return ROUTE_AND_PUBLISH_LUA, [user_route_key(u) for u in user_ids], [data, *own]


def single_redis_routed(user_ids: Sequence[int], reply: Sequence[Any]) -> Routed:
    offline_indexes, own_targets = reply
    return Routed([user_ids[i - 1] for i in offline_indexes], list(own_targets))


@dataclass(slots=True)
class _Event:
    user_ids: Sequence[int]
    data: bytes
    # process id -> positions (in user_ids) of the recipients it holds
    targets: dict[bytes, list[int]] = field(default_factory=dict)
    dead: set[bytes] = field(default_factory=set)


class ClusterFanout:
    """The routing steps of a batch of events on a cluster, without the I/O: the caller
    runs :meth:`resolve_calls` (scripts), :meth:`publishes` (``SPUBLISH``) and
    :meth:`dead_routes` (``SREM``) each as one pipeline and hands back the replies."""

    def __init__(self, events: Sequence[tuple[Sequence[int], bytes]], own: Collection[bytes]):
        self._events = [_Event(user_ids, data) for user_ids, data in events]
        self._own = set(own)
        # per resolve call: (event, positions of its KEYS)
        self._calls: list[tuple[_Event, list[int]]] = []
        self._publishes: list[tuple[_Event, bytes]] = []

    def resolve_calls(self) -> list[ScriptCall]:
        """One script call per event and bucket of its recipients."""
        calls: list[ScriptCall] = []
        for event in self._events:
            for positions in positions_by_bucket(event.user_ids).values():
                keys = [user_route_key(event.user_ids[p]) for p in positions]
                calls.append((RESOLVE_ROUTES_LUA, keys, []))
                self._calls.append((event, positions))
        return calls

    def resolved(self, replies: Sequence[Sequence[Any]]) -> None:
        for (event, positions), reply in zip(self._calls, replies, strict=True):
            for process, indexes in zip(reply[::2], reply[1::2], strict=True):
                held = event.targets.setdefault(process, [])
                held.extend(positions[i - 1] for i in indexes)  # Lua's indexes are 1-based

    def publishes(self) -> list[tuple[str, bytes]]:
        """(channel, envelope) of each process to publish to: every target but our own."""
        self._publishes = [
            (event, process)
            for event in self._events
            for process in event.targets
            if process not in self._own
        ]
        return [(process_channel(p.decode()), e.data) for e, p in self._publishes]

    def published(self, receivers: Sequence[int]) -> None:
        for (event, process), count in zip(self._publishes, receivers, strict=True):
            if not count:
                event.dead.add(process)

    def dead_routes(self) -> list[tuple[str, bytes]]:
        """(route set, process id) of each route to a process no publish reached."""
        return [
            (user_route_key(event.user_ids[position]), process)
            for event in self._events
            for process in event.dead
            for position in event.targets[process]
        ]

    def routed(self) -> list[Routed]:
        outcome = []
        for event in self._events:
            online = {
                position
                for process, positions in event.targets.items()
                if process not in event.dead
                for position in positions
            }
            outcome.append(
                Routed(
                    [u for p, u in enumerate(event.user_ids) if p not in online],
                    [process for process in event.targets if process in self._own],
                )
            )
        return outcome
