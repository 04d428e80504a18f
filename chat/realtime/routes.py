"""Where a user's live connections are: the route table in Redis.

Each server process subscribes to one channel of its own (``rt:proc:<process id>``) and
keeps, per user it has connections for, its process id in the set ``rt:user:<user id>``.
Publishing an event is one round trip: a Lua script unions the recipients' route sets and
publishes the envelope once to each process that has any of them, except the publishing
process itself, which hands the event to its own hub in memory (no round trip through
its own subscription). When a publish reaches
no subscriber, that process is gone (crashed without cleaning up), and the script drops
it from the sets it came from, so dead routes cost at most one wasted publish.
"""

from __future__ import annotations

USER_ROUTE_KEY = "rt:user:{}"
PROCESS_CHANNEL = "rt:proc:{}"

# KEYS: route set of each recipient. ARGV[1]: the envelope; ARGV[2..]: the ids of the
# calling process's own hubs, which get the event in memory rather than through Redis.
# Returns {1-based indexes of the KEYS whose user no live process holds (offline users:
# push notification work), the caller's own hubs that hold recipients}.
ROUTE_AND_PUBLISH_LUA = """
local mine = {}
for index = 2, #ARGV do
    mine[ARGV[index]] = true
end
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
local own = {}
for _, process in ipairs(order) do
    local reached = mine[process]
    if reached then
        own[#own + 1] = process
    else
        reached = redis.call('PUBLISH', 'rt:proc:' .. process, ARGV[1]) > 0
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


def user_route_key(user_id: int) -> str:
    return USER_ROUTE_KEY.format(user_id)


def process_channel(process_id: str) -> str:
    return PROCESS_CHANNEL.format(process_id)
