"""Presence state in Redis (production): shared by every server process, TTL-based.

Keys (all in the configured Redis database, so deployments on other databases never mix),
per bucket ``b = user id % USER_BUCKETS`` (``chatproject/redis_keys.py``); the keys of a
bucket share the hash tag ``{pr:<b>}`` and so one Redis Cluster slot, which is what lets
each script below touch several of them:

* ``{pr:<b>}:dev:<user id>``: sorted set, connection member -> expiry (unix seconds). A
  member is ``<device id>/<process token><n>``, one per socket, so a device connected
  twice, or a second device, is a second member. The key itself expires a while after the
  last refresh, so nothing outlives a whole deployment going down.
* ``{pr:<b>}:users``: sorted set, user id (of the bucket) -> the latest expiry among their
  members. The sweeper reads the expired range of these sets instead of scanning every user.
* ``{pr:<b>}:sweep``: a short lock (SET NX PX): one process per interval sweeps the bucket.

Every operation is one round trip on a single Redis (a Lua script, or one pipeline of one
script call per bucket), and on a cluster one per master at most (the pipeline's calls go
to their buckets' masters in parallel): a process refreshes all of its connections, and
the sweeper sweeps every bucket, with one pipeline per tick, whatever their number; the
sockets that connect (or go away) together are added (removed) with one pipeline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings

from chatproject.redis_connections import ScriptCall, connections
from chatproject.redis_keys import USER_BUCKETS, bucket_of, tag

from . import Lease, PresenceBackend

if TYPE_CHECKING:
    from chatproject.redis_connections import SyncRedis

NAMESPACE = "pr"
REFRESH_BATCH = 1_000

# KEYS: devices of the user, pr:users. ARGV: now, member, expiry, user id, key ttl (ms).
# Returns 1 if the user had no live member before (online transition).
CONNECT_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], 'GT', ARGV[3], ARGV[4])
if before == 0 then return 1 end
return 0
"""

# KEYS: devices of the user, pr:users. ARGV: now, member, user id.
# Returns 1 if this call removed the user's last live member (offline transition).
DISCONNECT_LUA = """
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
return removed
"""

# KEYS: users of one bucket, then the devices key of each lease (same bucket). ARGV: key
# ttl (ms), then (user id, member, expiry) per lease. Only existing members are extended
# (a connection removed meanwhile must not come back); returns the 1-based indexes of the
# leases whose member is gone.
REFRESH_LUA = """
local missing = {}
for n = 1, #KEYS - 1 do
    local key = KEYS[n + 1]
    local i = 3 * n - 1
    if redis.call('ZSCORE', key, ARGV[i + 1]) then
        redis.call('ZADD', key, ARGV[i + 2], ARGV[i + 1])
        redis.call('PEXPIRE', key, ARGV[1])
        redis.call('ZADD', KEYS[1], 'GT', ARGV[i + 2], ARGV[i])
    else
        missing[#missing + 1] = n
    end
end
return missing
"""

# KEYS: users and sweep lock of one bucket. ARGV: now, the bucket's devices key prefix,
# limit, lock ms, lock owner. The devices keys it builds are of the same bucket (slot).
# Returns a flat list: user id, last expiry, user id, last expiry, ...
SWEEP_LUA = """
if not redis.call('SET', KEYS[2], ARGV[5], 'NX', 'PX', ARGV[4]) then return {} end
local gone = {}
local users = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, user in ipairs(users) do
    local key = ARGV[2] .. user
    local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
    local left = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    if #left == 0 then
        redis.call('ZREM', KEYS[1], user)
        redis.call('DEL', key)
        gone[#gone + 1] = user
        gone[#gone + 1] = top[2] or ARGV[1]
    else
        redis.call('ZADD', KEYS[1], left[2], user)
    end
end
return gone
"""


def _devices_prefix(bucket: int) -> str:
    return f"{tag(NAMESPACE, bucket)}:dev:"


def _devices_key(user_id: int) -> str:
    return f"{_devices_prefix(bucket_of(user_id))}{user_id}"


def _users_key(bucket: int) -> str:
    return f"{tag(NAMESPACE, bucket)}:users"


def _sweep_lock_key(bucket: int) -> str:
    return f"{tag(NAMESPACE, bucket)}:sweep"


class RedisPresence(PresenceBackend):
    def __init__(self) -> None:
        self._client: SyncRedis = connections.sync_client()
        self._owner = f"{threading.get_native_id()}:{id(self)}"

    @staticmethod
    def _key_ttl_ms() -> int:
        # Long enough to survive a few missed refreshes; the sweeper decides, not the TTL.
        return int((settings.PRESENCE_TIMEOUT + 3 * settings.PRESENCE_TICK) * 1000) + 1000

    def connect_many(self, leases: Sequence[Lease], *, now: float) -> list[bool]:
        ttl = self._key_ttl_ms()
        calls: list[ScriptCall] = [
            (
                CONNECT_LUA,
                [_devices_key(lease.user_id), _users_key(bucket_of(lease.user_id))],
                [repr(now), lease.member, repr(lease.expiry), lease.user_id, ttl],
            )
            for lease in leases
        ]
        return [bool(result) for result in connections.eval_many(calls)]

    def disconnect_many(self, members: Sequence[tuple[int, str]], *, now: float) -> list[bool]:
        calls: list[ScriptCall] = [
            (
                DISCONNECT_LUA,
                [_devices_key(user_id), _users_key(bucket_of(user_id))],
                [repr(now), member, user_id],
            )
            for user_id, member in members
        ]
        return [bool(result) for result in connections.eval_many(calls)]

    def refresh(self, leases: Sequence[Lease]) -> list[Lease]:
        if not leases:
            return []
        by_bucket: dict[int, list[Lease]] = {}
        for lease in leases:
            by_bucket.setdefault(bucket_of(lease.user_id), []).append(lease)
        batches = [
            (bucket, group[i : i + REFRESH_BATCH])
            for bucket, group in by_bucket.items()
            for i in range(0, len(group), REFRESH_BATCH)
        ]
        ttl = self._key_ttl_ms()
        calls: list[ScriptCall] = []
        for bucket, batch in batches:
            keys = [_users_key(bucket), *(_devices_key(lease.user_id) for lease in batch)]
            args: list[Any] = [ttl]
            for lease in batch:
                args += [lease.user_id, lease.member, repr(lease.expiry)]
            calls.append((REFRESH_LUA, keys, args))
        results = connections.eval_many(calls)
        return [
            batch[index - 1]
            for (_, batch), missing in zip(batches, results, strict=True)
            for index in missing
        ]

    def sweep(self, *, now: float, limit: int, lock_seconds: float) -> list[tuple[int, float]]:
        """Up to ``limit`` users per bucket, each bucket under its own lock."""
        lock_ms = max(1, int(lock_seconds * 1000))
        calls: list[ScriptCall] = [
            (
                SWEEP_LUA,
                [_users_key(bucket), _sweep_lock_key(bucket)],
                [repr(now), _devices_prefix(bucket), limit, lock_ms, self._owner],
            )
            for bucket in range(USER_BUCKETS)
        ]
        return [
            (int(flat[i]), float(flat[i + 1]))
            for flat in connections.eval_many(calls)
            for i in range(0, len(flat), 2)
        ]

    def online(self, user_ids: Iterable[int], *, now: float) -> set[int]:
        ids = list(user_ids)
        if not ids:
            return set()
        pipe = self._client.pipeline(transaction=False)
        for user_id in ids:
            pipe.zcount(_devices_key(user_id), f"({now!r}", "+inf")
        return {user_id for user_id, count in zip(ids, pipe.execute(), strict=True) if count}

    def reset(self) -> None:
        # On a cluster the scan visits every master and the delete is split per slot.
        keys = list(self._client.scan_iter(match=f"{{{NAMESPACE}:*}}:*"))
        if keys:
            self._client.delete(*keys)
