-- delete.lua: remove a job, its items, error counts and index entries, atomically.
--
-- KEYS     as create.lua (the job's four keys, the namespace's five sorted sets, its marker)
-- ARGV[1]  job id (the index member)
-- ARGV[2]  optional: delete only if the job expired at or before this ms (purge); '' for always
--
-- Returns 1 if the job existed (and went), else 0. A purge of a job that is
-- gone drops its index entries all the same. The keys go by UNLINK: a job of
-- a million items is freed by the server's background thread, not while every
-- other client waits. When the namespace's last job goes, so do its own keys.

local id = ARGV[1]
if ARGV[2] and ARGV[2] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  local expires = tonumber(redis.call('HGET', KEYS[1], 'x'))
  if not expires or expires > tonumber(ARGV[2]) then
    redis.call('ZREM', KEYS[9], id)  -- started again, or an entry left: not this one's
    if expires then redis.call('ZADD', KEYS[9], expires, id) end
    return 0
  end
end
local existed = redis.call('UNLINK', KEYS[1])
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4])
for i = 5, 9 do redis.call('ZREM', KEYS[i], id) end
if redis.call('EXISTS', KEYS[5]) == 0 then  -- its last job: nothing of the namespace stays
  redis.call('UNLINK', KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10])
else  -- the last running job may have gone
  namespace_lives({KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]}, KEYS[10], nil)
end
if existed == 1 then  -- wake the job's watchers (feed.py)
  redis.call(redis.REDIS_VERSION_NUM and 'SPUBLISH' or 'PUBLISH', KEYS[1], '')
end
return existed
