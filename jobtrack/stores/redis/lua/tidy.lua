-- tidy.lua: set index entries right from the jobs' hashes, atomically (listings, migration).
--
-- KEYS[1..5]   the namespace's jobs, running, done, beat and expiring sorted sets
-- KEYS[6..n]   the jobs' hashes        <prefix>:{<namespace>}:job:<job_id>
-- ARGV[1..n-5] the jobs' ids, in the order of KEYS[6..n]
--
-- A job that is gone (expired, evicted, deleted by hand) leaves every index; a job
-- there is entered in the indexes of its state (a listing found its entry out of
-- date, or a namespace written by jobtrack 0.1 gets its status indexes).
-- Returns how many jobs were gone.

local gone = 0
for i = 1, #ARGV do
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
return gone
