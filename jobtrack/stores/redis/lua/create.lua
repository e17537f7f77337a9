-- create.lua: start a job unless its id is taken (port of rules.new_job + Store.create).
--
-- KEYS[1]  the job's hash          <prefix>:{<namespace>}:job:<job_id>
-- KEYS[2]  the namespace's index   <prefix>:{<namespace>}:jobs   (sorted set)
-- KEYS[3..5] the job's items, failed items and error counts (see update.lua):
--          removed, should an earlier job of that id have left any
-- ARGV[1]  job id (the index member)
-- ARGV[2]  total, an integer >= 0 (checked by the tracker)
-- ARGV[3]  now: milliseconds since the epoch, from the tracker's clock
--
-- Both keys carry the namespace as hash tag, so they share a Cluster slot.
-- Returns 1 when created, 0 when the id exists (nothing is changed then).
-- Hash fields: t total, p processed, s successful, f failed, e last error,
-- st started, up updated, fin finished (ms; absent while running).

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local total = ARGV[2]
local now = ARGV[3]
if total == '0' then
  redis.call('HSET', KEYS[1], 't', total, 'p', 0, 's', 0, 'f', 0, 'st', now, 'up', now, 'fin', now)
else
  redis.call('HSET', KEYS[1], 't', total, 'p', 0, 's', 0, 'f', 0, 'st', now, 'up', now)
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
return 1
