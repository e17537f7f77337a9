-- page.lua: up to a page of a sorted-set index below a cursor, highest first.
--
-- KEYS[1]  the index (scored by ms; equal scores ordered by member)
-- ARGV[1]  the page size
-- ARGV[2]  optional: the cursor's score; '' or absent for the top of the index
-- ARGV[3]  optional: the cursor's member; '' for "every entry below the score"
--
-- Returns a flat list: member, score, member, score... When the cursor's own
-- entry is still in the index (a page always ends on one), the entries below
-- it by rank: one range read, however many entries share its score. Else the
-- entries that share its score (the caller keeps those below its member: Lua
-- compares strings by locale) and a page of lower scores.

local limit = tonumber(ARGV[1])
local ms, member = ARGV[2], ARGV[3]
if not ms or ms == '' then
  return redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, limit)
end
local lower = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ms, '-inf', 'WITHSCORES', 'LIMIT', 0, limit)
if member == '' then
  return lower
end
local score = redis.call('ZSCORE', KEYS[1], member)
if score and tonumber(score) == tonumber(ms) then
  local rank = redis.call('ZREVRANK', KEYS[1], member)
  return redis.call('ZREVRANGE', KEYS[1], rank + 1, rank + limit, 'WITHSCORES')
end
local ties = redis.call('ZRANGEBYSCORE', KEYS[1], ms, ms, 'WITHSCORES')
for i = 1, #lower do ties[#ties + 1] = lower[i] end
return ties
