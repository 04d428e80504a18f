"""The production registry: one Redis hash of records and a sorted set of their expiries.

``{chat:servers}:records`` (hash) maps a server id to its record as JSON;
``{chat:servers}:expiry`` (sorted set) scores each id with the wall-clock second its
record runs out; ``{chat:servers}:claims`` (hash) counts the clients sent to a server
since its record was published. The keys share the ``{chat:servers}`` hash tag, so on a
Redis Cluster they live in one slot. A publish is one transaction (record, expiry, claims
reset); a claim one script (only for a known server); a read is one script that drops the
expired records and returns the rest with their claims (atomic, so a server that
refreshes during a read is never half removed). Expiry is by score rather than key TTLs,
so listing the live servers never scans the keyspace.
"""

from __future__ import annotations

import json
from dataclasses import replace

from chatproject.redis_connections import connections

from . import ServerRecord, ServerRegistry

DEFAULT_PREFIX = "chat:servers"

# KEYS: records, expiry, claims; ARGV: now. Returns the live records' JSON and claims.
LIVE_LUA = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[3], id)
end
local alive = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
if #alive == 0 then return {{}, {}} end
return {redis.call('HMGET', KEYS[1], unpack(alive)), redis.call('HMGET', KEYS[3], unpack(alive))}
"""

# KEYS: records, claims; ARGV: server id. A server removed meanwhile is not counted.
CLAIM_LUA = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
end
"""


class RedisRegistry(ServerRegistry):
    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        # OPTIONS {"prefix": ...} keeps two deployments (or test runs) on one Redis apart.
        self.records_key = f"{{{prefix}}}:records"
        self.expiry_key = f"{{{prefix}}}:expiry"
        self.claims_key = f"{{{prefix}}}:claims"

    def publish(self, record: ServerRecord, *, ttl: float, now: float) -> None:
        pipe = connections.sync_client().pipeline(transaction=True)
        pipe.hset(self.records_key, record.server_id, json.dumps(record.as_json()))
        pipe.zadd(self.expiry_key, {record.server_id: now + ttl})
        pipe.hdel(self.claims_key, record.server_id)
        pipe.execute()

    def claim(self, server_id: str) -> None:
        connections.sync_script(CLAIM_LUA)(
            keys=[self.records_key, self.claims_key], args=[server_id]
        )

    def remove(self, server_id: str) -> None:
        pipe = connections.sync_client().pipeline(transaction=True)
        pipe.hdel(self.records_key, server_id)
        pipe.zrem(self.expiry_key, server_id)
        pipe.hdel(self.claims_key, server_id)
        pipe.execute()

    def live(self, *, now: float) -> list[ServerRecord]:
        rows, claims = connections.sync_script(LIVE_LUA)(
            keys=[self.records_key, self.expiry_key, self.claims_key], args=[repr(now)]
        )
        found = [
            replace(ServerRecord.from_json(json.loads(raw)), claimed=int(claimed or 0))
            for raw, claimed in zip(rows, claims, strict=True)
            if raw is not None
        ]
        return sorted(found, key=lambda record: record.server_id)
