-- tidy.lua: set index entries right from the jobs' hashes, atomically (listings, migration).
--
-- KEYS[1..5]   the namespace's jobs, running, done, beat and expiring sorted sets
-- KEYS[6]      its marker <prefix>:{<namespace>}:indexed
-- KEYS[7..n]   the jobs' hashes        <prefix>:{<namespace>}:job:<job_id>
-- ARGV[1]      '1' to mark the status indexes complete (the last step of building them
--              for a namespace of jobtrack 0.1), if the namespace still has jobs; else ''
-- ARGV[2..]    the jobs' ids, in the order of KEYS[7..n]
--
-- A job that is gone (expired, evicted, deleted by hand) leaves every index; a job
-- there is entered in the indexes of its state (a listing found its entry out of
-- date, or a namespace written by jobtrack 0.1 gets its status indexes). When no
-- job is left, neither is any key of the namespace.
-- Returns how many jobs were gone.

local gone = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local v = redis.call('HMGET', KEYS[i + 5], 'st', 'up', 'fin', 'x')
  if not v[1] then
    for k = 1, 5 do redis.call('ZREM', KEYS[k], id) end
    gone = gone + 1
  else
    redis.call('ZADD', KEYS[1], v[1], id)
    if v[3] then
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZREM', KEYS[4], id)
      redis.call('ZADD', KEYS[3], v[1], id)
      if v[4] then redis.call('ZADD', KEYS[5], v[4], id) end
    else
      redis.call('ZREM', KEYS[3], id)
      redis.call('ZREM', KEYS[5], id)
      redis.call('ZADD', KEYS[2], v[1], id)
      redis.call('ZADD', KEYS[4], tonumber(v[2]) - tonumber(v[2]) % 1000, id)
    end
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
else
  if ARGV[1] == '1' then  -- built: noted as kept (0.1 kept every job until deleted)
    redis.call('SET', KEYS[6], 1, 'NX')
  end
  namespace_lives({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]}, KEYS[6], nil)
end
return gone
