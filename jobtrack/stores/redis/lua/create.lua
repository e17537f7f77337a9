-- create.lua: start a job unless its id is taken (port of rules.new_job + Store.create).
--
-- KEYS     as update.lua: the job's hash, items, failed items, error counts, then the
--          namespace's jobs, running, done, beat and expiring sorted sets; and
-- KEYS[10] the namespace's marker <prefix>:{<namespace>}:indexed, set when its first job
--          starts: its status indexes are complete from the start (see commands.py)
-- ARGV[1]  job id (the index member)
-- ARGV[2]  total, an integer >= 0 (checked by the tracker)
-- ARGV[3]  now: milliseconds since the epoch, from the tracker's clock
-- ARGV[4]  optional: expires ms, for a job completed at once (total 0); '' for never
-- ARGV[5]  optional: its keys' TTL in ms (with ARGV[4]); '' for none
--
-- All keys carry the namespace as hash tag, so they share a Cluster slot.
-- Returns 1 when created, 0 when the id exists (nothing is changed then).
-- Hash fields: t total, p processed, s successful, f failed, e last error,
-- st started, up updated, fin finished (ms; absent while running), x expires
-- (ms; absent while running or kept forever), q failed-item positions.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local id, total, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[5]) == 0 then  -- a new namespace: nothing to build later
  redis.call('SET', KEYS[10], 1)
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])  -- should an earlier job of that id have left any
for i = 6, 9 do redis.call('ZREM', KEYS[i], id) end
redis.call('ZADD', KEYS[5], now, id)
if total == '0' then
  redis.call('HSET', KEYS[1], 't', total, 'p', 0, 's', 0, 'f', 0, 'st', now, 'up', now, 'fin', now)
  redis.call('ZADD', KEYS[7], now, id)
  if ARGV[4] and ARGV[4] ~= '' then
    redis.call('HSET', KEYS[1], 'x', ARGV[4])
    redis.call('ZADD', KEYS[9], ARGV[4], id)
    if ARGV[5] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
  end
else
  redis.call('HSET', KEYS[1], 't', total, 'p', 0, 's', 0, 'f', 0, 'st', now, 'up', now)
  redis.call('ZADD', KEYS[6], now, id)
  redis.call('ZADD', KEYS[8], tonumber(now) - tonumber(now) % 1000, id)
end
return 1
