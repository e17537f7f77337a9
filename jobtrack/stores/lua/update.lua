-- update.lua: apply one update to a job, atomically (port of jobtrack.rules.apply).
--
-- KEYS[1]  the job's hash          <prefix>:{<namespace>}:job:<job_id>
-- ARGV[1]  now: milliseconds since the epoch, from the tracker's clock
-- ARGV[2]  processed delta   (integers >= 0, checked by the tracker)
-- ARGV[3]  successful delta
-- ARGV[4]  failed delta
-- ARGV[5]  error text, already truncated; '' for none
-- ARGV[6]  '1' to abort (count every remaining item as failed), else '0'
--
-- Returns one of
--   {'ok', total, processed, successful, failed, last_error|false, started, updated, finished|false}
--   {'missing'}                      no such job
--   {'finished'}                     the job has completed: nothing changes
--   {'invalid', what, value, total}  an invariant would break: nothing changes
-- Numbers are written with %d: Lua's own conversion would turn large ones into 1.7e+12.

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
local failed = tonumber(v[4])
local updated = tonumber(v[7])
local now = tonumber(ARGV[1])
if ARGV[6] == '1' then
  failed = total - successful
else
  processed = processed + tonumber(ARGV[2])
  successful = successful + tonumber(ARGV[3])
  failed = failed + tonumber(ARGV[4])
  if processed > total then
    return {'invalid', 'processed', processed, total}
  end
  if successful + failed > total then
    return {'invalid', 'successful + failed', successful + failed, total}
  end
end
if now > updated then
  updated = now
end
local fmt = string.format
local fields = {'p', fmt('%d', processed), 's', fmt('%d', successful), 'f', fmt('%d', failed),
  'up', fmt('%d', updated)}
local last_error = v[5] or false
if ARGV[5] ~= '' then
  last_error = ARGV[5]
  fields[#fields + 1] = 'e'
  fields[#fields + 1] = last_error
end
local finished = false
if successful + failed == total then
  finished = updated
  fields[#fields + 1] = 'fin'
  fields[#fields + 1] = fmt('%d', updated)
end
redis.call('HSET', KEYS[1], unpack(fields))
return {'ok', total, processed, successful, failed, last_error, tonumber(v[6]), updated, finished}
