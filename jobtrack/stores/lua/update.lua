-- update.lua: apply one update to a job, atomically (port of jobtrack.rules.apply).
--
-- KEYS[1]  the job's hash          <prefix>:{<namespace>}:job:<job_id>
-- ARGV[1]  now: milliseconds since the epoch, from the tracker's clock
-- ARGV[2]  processed delta   (integers 0..2^53-1, checked by the tracker)
-- ARGV[3]  successful delta
-- ARGV[4]  failed delta
-- ARGV[5]  optional: error text, already truncated; '' or absent for none
-- ARGV[6]  optional: '1' to abort (count every remaining item as failed)
--
-- Returns one of
--   {'ok', total, processed, successful, failed, last_error|false, started, updated, finished|false}
--   {'missing'}                      no such job
--   {'finished'}                     the job has completed: nothing changes
--   {'invalid', what, value, total}  an invariant would break: nothing changes
-- Counts stay below 2^53, so Lua's doubles hold them exactly, and redis.call
-- writes integral doubles as plain digits (tostring() would not: 1.7e+12).

local v = redis.call('HMGET', KEYS[1], 't', 'p', 's', 'f', 'e', 'st', 'up', 'fin')
if not v[1] then
  return {'missing'}
end
if v[8] then
  return {'finished'}
end
local total = tonumber(v[1])
local processed = tonumber(v[2])
local successful = tonumber(v[3])
local failed
if ARGV[6] == '1' then
  failed = total - successful
else
  processed = processed + tonumber(ARGV[2])
  successful = successful + tonumber(ARGV[3])
  failed = tonumber(v[4]) + tonumber(ARGV[4])
  if processed > total then
    return {'invalid', 'processed', processed, total}
  end
  if successful + failed > total then
    return {'invalid', 'successful + failed', successful + failed, total}
  end
end
local updated = tonumber(v[7])
local now = tonumber(ARGV[1])
if now > updated then
  updated = now
end
local last_error = v[5] or false
local error_text = ARGV[5]
local finished = false
if successful + failed == total then
  finished = updated
end
if error_text and error_text ~= '' then
  last_error = error_text
  if finished then
    redis.call('HSET', KEYS[1], 'p', processed, 's', successful, 'f', failed, 'up', updated,
      'e', error_text, 'fin', finished)
  else
    redis.call('HSET', KEYS[1], 'p', processed, 's', successful, 'f', failed, 'up', updated,
      'e', error_text)
  end
elseif finished then
  redis.call('HSET', KEYS[1], 'p', processed, 's', successful, 'f', failed, 'up', updated,
    'fin', finished)
else
  redis.call('HSET', KEYS[1], 'p', processed, 's', successful, 'f', failed, 'up', updated)
end
return {'ok', total, processed, successful, failed, last_error, tonumber(v[6]), updated, finished}
