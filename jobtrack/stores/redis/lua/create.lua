-- create.lua: start a job unless its id is taken (port of rules.new_job + Store.create).
--
-- KEYS     as update.lua: the job's hash, items, failed items, error counts, then the
--          namespace's jobs, running, done, beat and expiring sorted sets, and its marker
--          <prefix>:{<namespace>}:indexed, set when its first job starts: its status indexes
--          are complete from the start, and it notes how long its keys live (lifetime.lua)
-- ARGV[1]  job id (the index member)
-- ARGV[2]  total, an integer >= 0 (checked by the tracker)
-- ARGV[3]  now: milliseconds since the epoch, from the tracker's clock
-- ARGV[4]  optional: expires ms, for a job completed at once (total 0); '' for never
-- ARGV[5]  optional: its keys' TTL in ms (with ARGV[4]); '' for none
-- ARGV[6]  optional: forgotten before: a job of that id that expired at or before this ms
--          is forgotten, and replaced with its items and error counts; '' for none
--
-- All keys carry the namespace as hash tag, so they share a Cluster slot.
-- Returns 1 when created, 2 when created as the namespace's first job (the client then
-- enters the namespace in the store's list of namespaces), 0 when the id is taken
-- (nothing is changed then).
-- Hash fields: t total, p processed, s successful, f failed, e last error,
-- st started, up updated, fin finished (ms; absent while running), x expires
-- (ms; absent while running or kept forever), q failed-item positions.

local id, total, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[1]) == 1 then
  local expires = ARGV[6] and ARGV[6] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'x'))
  if not expires or expires > tonumber(ARGV[6]) then
    return 0
  end
  redis.call('UNLINK', KEYS[1])  -- forgotten
end
local created = 1
if redis.call('EXISTS', KEYS[5]) == 0 then  -- a new namespace: nothing to build later
  redis.call('SET', KEYS[10], 0)
  created = 2
end
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4])  -- an earlier job of that id may have left them
for i = 6, 9 do redis.call('ZREM', KEYS[i], id) end
redis.call('ZADD', KEYS[5], now, id)
local keeps = nil
if total == '0' then
  redis.call('HSET', KEYS[1], 't', total, 'p', 0, 's', 0, 'f', 0, 'st', now, 'up', now, 'fin', now)
  redis.call('ZADD', KEYS[7], now, id)
  keeps = true
  if ARGV[4] and ARGV[4] ~= '' then
    redis.call('HSET', KEYS[1], 'x', ARGV[4])
    redis.call('ZADD', KEYS[9], ARGV[4], id)
    if ARGV[5] ~= '' then
      keeps = tonumber(ARGV[5])
      redis.call('PEXPIRE', KEYS[1], keeps)
    end
  end
else
  redis.call('HSET', KEYS[1], 't', total, 'p', 0, 's', 0, 'f', 0, 'st', now, 'up', now)
  redis.call('ZADD', KEYS[6], now, id)
  redis.call('ZADD', KEYS[8], tonumber(now) - tonumber(now) % 1000, id)
end
namespace_lives({KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]}, KEYS[10], keeps)
return created
