"""Where a user's live connections are: the route table in Redis.

Each server process subscribes to one channel of its own (``rt:proc:<process id>``) and
keeps, per user it has connections for, its process id in the set ``rt:user:<user id>``.
Publishing an event is one round trip: a Lua script unions the recipients' route sets and
publishes the envelope once to each process that has any of them. When a publish reaches
no subscriber, that process is gone (crashed without cleaning up), and the script drops
it from the sets it came from, so dead routes cost at most one wasted publish.
"""

from __future__ import annotations

USER_ROUTE_KEY = "rt:user:{}"
PROCESS_CHANNEL = "rt:proc:{}"

# KEYS: route set of each recipient. ARGV[1]: the envelope. Returns the 1-based indexes
# of the KEYS whose user no live process holds (offline users: push notification work).
ROUTE_AND_PUBLISH_LUA = """
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
local online = {}
for _, process in ipairs(order) do
    if redis.call('PUBLISH', 'rt:proc:' .. process, ARGV[1]) > 0 then
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
return offline
"""


def user_route_key(user_id: int) -> str:
    return USER_ROUTE_KEY.format(user_id)


def process_channel(process_id: str) -> str:
    return PROCESS_CHANNEL.format(process_id)
