-- page.lua: up to a page of a sorted-set index below a cursor, highest first. Read-only.
--
-- KEYS[1]  the index (scored by ms; equal scores ordered by member, byte by byte)
-- KEYS[2]  optional, for a status index: the namespace's marker <prefix>:{<namespace>}:indexed
-- KEYS[3]  optional, with KEYS[2]: the namespace's index of every job <prefix>:{<namespace>}:jobs
-- ARGV[1]  the page size
-- ARGV[2]  optional: the cursor's score; '' or absent for the top of the index
-- ARGV[3]  optional: the cursor's member; '' for "every entry below the score"
--
-- Returns {read, entries}: entries a flat list member, score, member, score... of at most a
-- page, highest first, and read how many entries the script read to find them; or {-1, {}}
-- when the namespace has jobs but no marker: a namespace of jobtrack 0.1, whose status
-- indexes are to be built first. A page starts at the rank of the cursor's own entry if it
-- is still there (ZRANK); else at the first entry above the cursor, found by a binary
-- search among the entries that share its score, one rank at a time (ZRANGE i i): a page
-- reads itself and at most log2(ties) + 1 entries more, however many jobs tie.

if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  return {-1, {}}
end
local index, limit = KEYS[1], tonumber(ARGV[1])
local ms, member = ARGV[2], ARGV[3]
if not ms or ms == '' then
  local page = redis.call('ZREVRANGE', index, 0, limit - 1, 'WITHSCORES')
  return {#page / 2, page}
end

-- a < b byte by byte, as Redis orders members (Lua's < follows the server's locale)
local function below(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local read = 0
local rank  -- ascending rank of the first entry at or above the cursor
local score = member ~= '' and redis.call('ZSCORE', index, member)
if score and tonumber(score) == tonumber(ms) then
  rank = redis.call('ZRANK', index, member)
else
  rank = redis.call('ZCOUNT', index, '-inf', '(' .. ms)
  if member ~= '' then  -- the ties hold ranks rank .. high - 1, ordered by member
    local high = rank + redis.call('ZCOUNT', index, ms, ms)
    while rank < high do
      local middle = math.floor((rank + high) / 2)
      local at = redis.call('ZRANGE', index, middle, middle)[1]
      read = read + 1
      if below(at, member) then rank = middle + 1 else high = middle end
    end
  end
end
if rank == 0 then
  return {read, {}}
end
local top = redis.call('ZCARD', index) - rank  -- the entry below the cursor, by reverse rank
local page = redis.call('ZREVRANGE', index, top, top + limit - 1, 'WITHSCORES')
return {read + #page / 2, page}
