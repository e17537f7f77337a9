-- delete.lua: remove a job, its items, error counts and index entries, atomically.
--
-- KEYS     as update.lua (the job's four keys, then the namespace's five sorted sets)
-- ARGV[1]  job id (the index member)
-- ARGV[2]  optional: delete only if the job expired at or before this ms (purge); '' for always
--
-- Returns 1 if the job existed (and went), else 0. A purge of a job that is
-- gone drops its index entries all the same.

local id = ARGV[1]
if ARGV[2] and ARGV[2] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  local expires = tonumber(redis.call('HGET', KEYS[1], 'x'))
  if not expires or expires > tonumber(ARGV[2]) then
    redis.call('ZREM', KEYS[9], id)  -- started again, or an entry left: not this one's
    if expires then redis.call('ZADD', KEYS[9], expires, id) end
    return 0
  end
end
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
for i = 5, 9 do redis.call('ZREM', KEYS[i], id) end
return existed
