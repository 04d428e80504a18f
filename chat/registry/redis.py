"""The production registry: one Redis hash of records and a sorted set of their expiries.

``{chat:servers}:records`` (hash) maps a server id to its record as JSON;
``{chat:servers}:expiry`` (sorted set) scores each id with the wall-clock second its
record runs out. Both keys share the ``{chat:servers}`` hash tag, so on a Redis Cluster
they live in one slot. A publish is one ``HSET`` + ``ZADD`` transaction; a read is one
script that drops the expired records and returns the rest (atomic, so a server that
refreshes during a read is never half removed). Expiry is by score rather than key TTLs,
so listing the live servers never scans the keyspace.
"""

from __future__ import annotations

import json

from chatproject.redis_connections import connections

from . import ServerRecord, ServerRegistry

DEFAULT_PREFIX = "chat:servers"

# KEYS: records, expiry; ARGV: now. Returns the live records' JSON.
LIVE_LUA = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[1], id)
end
local alive = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
if #alive == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(alive))
"""


class RedisRegistry(ServerRegistry):
    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        # OPTIONS {"prefix": ...} keeps two deployments (or test runs) on one Redis apart.
        self.records_key = f"{{{prefix}}}:records"
        self.expiry_key = f"{{{prefix}}}:expiry"

    def publish(self, record: ServerRecord, *, ttl: float, now: float) -> None:
        pipe = connections.sync_client().pipeline(transaction=True)
        pipe.hset(self.records_key, record.server_id, json.dumps(record.as_json()))
        pipe.zadd(self.expiry_key, {record.server_id: now + ttl})
        pipe.execute()

    def remove(self, server_id: str) -> None:
        pipe = connections.sync_client().pipeline(transaction=True)
        pipe.hdel(self.records_key, server_id)
        pipe.zrem(self.expiry_key, server_id)
        pipe.execute()

    def live(self, *, now: float) -> list[ServerRecord]:
        rows = connections.sync_script(LIVE_LUA)(
            keys=[self.records_key, self.expiry_key], args=[repr(now)]
        )
        found = [ServerRecord.from_json(json.loads(raw)) for raw in rows if raw is not None]
        return sorted(found, key=lambda record: record.server_id)
