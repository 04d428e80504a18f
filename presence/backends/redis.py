"""Presence state in Redis (production): shared by every server process, TTL-based.

Keys (all in the configured Redis database, so deployments on other databases never mix):

* ``pr:dev:<user id>``: sorted set, connection member -> expiry (unix seconds). A member
  is ``<device id>/<process token><n>``, one per socket, so a device connected twice, or a
  second device, is a second member. The key itself expires a while after the last
  refresh, so nothing outlives a whole deployment going down.
* ``pr:users``: sorted set, user id -> the latest expiry among their members. The sweeper
  reads the expired range of this set instead of scanning every user.
* ``pr:sweep``: a short lock (SET NX PX): one process per interval runs the sweep.

Every operation is one round trip (a Lua script, or one pipeline); a process refreshes all
of its connections with one pipeline per tick, whatever their number.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings

from chatproject.redis_connections import connections

from . import Lease, PresenceBackend

if TYPE_CHECKING:
    from redis import Redis

DEVICES_KEY = "pr:dev:"
USERS_KEY = "pr:users"
SWEEP_LOCK_KEY = "pr:sweep"
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

# KEYS: pr:users. ARGV: devices key prefix, key ttl (ms), then (user id, member, expiry)
# triples. Only existing members are extended (a connection removed meanwhile must not
# come back); returns the 1-based indexes of the triples whose member is gone.
REFRESH_LUA = """
local missing = {}
local n = 0
for i = 3, #ARGV, 3 do
    n = n + 1
    local key = ARGV[1] .. ARGV[i]
    if redis.call('ZSCORE', key, ARGV[i + 1]) then
        redis.call('ZADD', key, ARGV[i + 2], ARGV[i + 1])
        redis.call('PEXPIRE', key, ARGV[2])
        redis.call('ZADD', KEYS[1], 'GT', ARGV[i + 2], ARGV[i])
    else
        missing[#missing + 1] = n
    end
end
return missing
"""

# KEYS: pr:users, pr:sweep. ARGV: now, devices key prefix, limit, lock ms, lock owner.
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


def _devices_key(user_id: int) -> str:
    return f"{DEVICES_KEY}{user_id}"


class RedisPresence(PresenceBackend):
    def __init__(self) -> None:
        self._client: Redis = connections.sync_client()
        self._connect = self._client.register_script(CONNECT_LUA)
        self._disconnect = self._client.register_script(DISCONNECT_LUA)
        self._refresh = self._client.register_script(REFRESH_LUA)
        self._sweep = self._client.register_script(SWEEP_LUA)
        self._owner = f"{threading.get_native_id()}:{id(self)}"

    @staticmethod
    def _key_ttl_ms() -> int:
        # Long enough to survive a few missed refreshes; the sweeper decides, not the TTL.
        return int((settings.PRESENCE_TIMEOUT + 3 * settings.PRESENCE_TICK) * 1000) + 1000

    def connect(self, lease: Lease, *, now: float) -> bool:
        result = self._connect(
            keys=[_devices_key(lease.user_id), USERS_KEY],
            args=[repr(now), lease.member, repr(lease.expiry), lease.user_id, self._key_ttl_ms()],
        )
        return bool(result)

    def disconnect(self, user_id: int, member: str, *, now: float) -> bool:
        result = self._disconnect(
            keys=[_devices_key(user_id), USERS_KEY], args=[repr(now), member, user_id]
        )
        return bool(result)

    def refresh(self, leases: Sequence[Lease]) -> list[Lease]:
        if not leases:
            return []
        pipe = self._client.pipeline(transaction=False)
        batches = [leases[i : i + REFRESH_BATCH] for i in range(0, len(leases), REFRESH_BATCH)]
        ttl = self._key_ttl_ms()
        for batch in batches:
            args: list[Any] = [DEVICES_KEY, ttl]
            for lease in batch:
                args += [lease.user_id, lease.member, repr(lease.expiry)]
            self._refresh(keys=[USERS_KEY], args=args, client=pipe)
        results = pipe.execute()
        return [
            batch[index - 1]
            for batch, missing in zip(batches, results, strict=True)
            for index in missing
        ]

    def sweep(self, *, now: float, limit: int, lock_seconds: float) -> list[tuple[int, float]]:
        flat = self._sweep(
            keys=[USERS_KEY, SWEEP_LOCK_KEY],
            args=[repr(now), DEVICES_KEY, limit, max(1, int(lock_seconds * 1000)), self._owner],
        )
        return [(int(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]

    def online(self, user_ids: Iterable[int], *, now: float) -> set[int]:
        ids = list(user_ids)
        if not ids:
            return set()
        pipe = self._client.pipeline(transaction=False)
        for user_id in ids:
            pipe.zcount(_devices_key(user_id), f"({now!r}", "+inf")
        return {user_id for user_id, count in zip(ids, pipe.execute(), strict=True) if count}

    def reset(self) -> None:
        keys = [USERS_KEY, SWEEP_LOCK_KEY, *self._client.scan_iter(match=f"{DEVICES_KEY}*")]
        self._client.delete(*keys)
