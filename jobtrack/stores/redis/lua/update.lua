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
--                                    (total and started as the hash holds them: digit strings)
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
local failed = tonumber(v[4])
local set = {'HSET', KEYS[1]}
local n = 2
if ARGV[6] == '1' then
  if failed ~= total - successful then
    failed = total - successful
    set[n + 1] = 'f'; set[n + 2] = failed; n = n + 2
  end
else
  local dp, ds, df = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  processed = processed + dp
  successful = successful + ds
  failed = failed + df
  if processed > total then
    return {'invalid', 'processed', processed, total}
  end
  if successful + failed > total then
    return {'invalid', 'successful + failed', successful + failed, total}
  end
  if dp ~= 0 then set[n + 1] = 'p'; set[n + 2] = processed; n = n + 2 end
  if ds ~= 0 then set[n + 1] = 's'; set[n + 2] = successful; n = n + 2 end
  if df ~= 0 then set[n + 1] = 'f'; set[n + 2] = failed; n = n + 2 end
end
local updated = tonumber(v[7])
local now = tonumber(ARGV[1])
if now > updated then
  updated = now
  set[n + 1] = 'up'; set[n + 2] = ARGV[1]; n = n + 2
end
local last_error = v[5] or false
local error_text = ARGV[5]
if error_text and error_text ~= '' then
  last_error = error_text
  set[n + 1] = 'e'; set[n + 2] = error_text; n = n + 2
end
local finished = false
if successful + failed == total then
  finished = updated
  set[n + 1] = 'fin'; set[n + 2] = updated; n = n + 2
end
if n > 2 then
  redis.call(unpack(set))
end
-- only the fields that change are written; total and started_at go back as
-- read (digit strings): converting numbers costs server time on every update
return {'ok', v[1], processed, successful, failed, last_error, v[6], updated, finished}
