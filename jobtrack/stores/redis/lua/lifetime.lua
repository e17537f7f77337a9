-- lifetime.lua: how long a namespace's own keys live. Not a script of its own: it is put
-- in front of create.lua, update.lua, delete.lua and tidy.lua (commands.py, Script.read).
--
-- A namespace's own keys are its five sorted sets (jobs, running, done, beat, expiring)
-- and its marker <prefix>:{<namespace>}:indexed, which holds the latest time (ms by the
-- server's clock) at which keys of one of its jobs expire: '0' while none does; '1' once
-- one of its jobs is kept until deleted (and in a namespace written before jobtrack 0.3,
-- whose jobs' TTLs were never noted). While a job runs, or the marker says '0' or '1',
-- the six keys never expire; otherwise they all expire at the marker's time, with the
-- namespace's longest-lived job: when the last job's keys are gone, nothing is left.

-- index: the five sorted sets' keys; marker: the marker's key; keeps: the TTL in ms just
-- given to a completed job's keys, true for a job kept until deleted, nil for neither.
local function namespace_lives(index, marker, keeps)
  local held = redis.call('GET', marker)
  if not held then  -- a namespace of jobtrack 0.1 whose status indexes are not built yet
    for i = 1, 5 do redis.call('PERSIST', index[i]) end  -- (as 0.1 kept them)
    return
  end
  local ends = tonumber(held) or 1
  if keeps == true then
    ends = 1
  elseif keeps and ends ~= 1 then
    local now = redis.call('TIME')  -- the clock Redis expires keys by (as their PEXPIRE)
    local last = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + keeps
    if last > ends then ends = last end
  end
  if ends ~= tonumber(held) then
    redis.call('SET', marker, ends)
  end
  local keys = {index[1], index[2], index[3], index[4], index[5], marker}
  if ends <= 1 or redis.call('EXISTS', index[2]) == 1 then  -- kept, or a job runs
    for i = 1, 6 do redis.call('PERSIST', keys[i]) end
  else
    for i = 1, 6 do redis.call('PEXPIREAT', keys[i], ends) end
  end
end

