-- update.lua: apply one update to a job, atomically (port of jobtrack.rules.apply with
-- rules.add_rate, and of rules.apply_item for an update about one item).
--
-- KEYS[1]  the job's hash          <prefix>:{<namespace>}:job:<job_id>
-- KEYS[2]  the job's items         <prefix>:{<namespace>}:items:<job_id>   (hash)
-- KEYS[3]  its failed items        <prefix>:{<namespace>}:failed:<job_id>  (sorted set)
-- KEYS[4]  its error counts        <prefix>:{<namespace>}:errors:<job_id>  (hash)
-- KEYS[5]  the namespace's jobs    <prefix>:{<namespace>}:jobs      (sorted set, by started ms)
-- KEYS[6]  its running jobs        <prefix>:{<namespace>}:running   (by started ms)
-- KEYS[7]  its completed jobs      <prefix>:{<namespace>}:done      (by started ms)
-- KEYS[8]  its running jobs' beats <prefix>:{<namespace>}:beat      (by updated ms, to the second)
-- KEYS[9]  its expiring jobs       <prefix>:{<namespace>}:expiring  (by expires ms)
-- KEYS[10] its marker              <prefix>:{<namespace>}:indexed   (see lifetime.lua)
-- ARGV[1]  now: milliseconds since the epoch, from the tracker's clock
-- ARGV[2]  processed delta   (integers 0..2^53-1, checked by the tracker; 0 or 1 with an item)
-- ARGV[3]  successful delta
-- ARGV[4]  failed delta
-- ARGV[5]  optional: retain ms: the update that completes the job sets expires = finished +
--          this (hash field 'x'), gives the job's keys a TTL of retain + remember (and the
--          namespace's own keys at least as long, lifetime.lua), and drops the index entries
--          of up to two jobs expired for longer than remember; '' for never
-- ARGV[6]  optional: remember ms (with ARGV[5])
-- ARGV[7]  optional: error text, already truncated; '' or absent for none
-- ARGV[8]  optional: '1' to abort (count every remaining item as failed)
-- ARGV[9]  optional: items to add to the total first (extend), '0' or absent for none
-- ARGV[10] optional: the item's field in KEYS[2] (its name, or a digest of a long name)
-- ARGV[11] optional: the item's name
-- ARGV[12] optional: apply only if the job's updated ms is this (reap); '' for always
--
-- The job id is the tail of KEYS[1] after the prefix KEYS[5] shares.
-- Returns one of
--   {'ok', total, processed, successful, failed, last_error|false, started, updated, finished|false,
--    expires|false, rate, rate_at, rate_done}
--                                    (started, and total unless extended, as the hash holds
--                                    them: digit strings; rate a string, '%.17g': a
--                                    reply would truncate a number; rate_at and
--                                    rate_done numbers, or digit strings on a redelivery)
--   {'missing'}                      no such job
--   {'finished'}                     the job has completed: nothing changes
--   {'changed'}                      ARGV[12] is not the job's updated ms: nothing changes
--   {'invalid', what, value, total}  an invariant would break: nothing changes
-- An item update that changes nothing for its item (a redelivery) returns the
-- job as it is, completed or not, and writes nothing.
-- Items: KEYS[2] maps each item to its state digit (bits: 1 processed, 2 failed,
-- 4 successful); a failed item's value goes on: "\n" position "\n" failed ms
-- "\n" name "\n" error (names hold no control characters). KEYS[3] scores the
-- failed items by position (the job's field 'q' counts positions), KEYS[4]
-- maps each error message ('' for the group of messages beyond the first 100)
-- to "count first_ms last_ms".
-- The smoothed rate of items done (rules.fold, step for step) is the hash's 'r' (items/s,
-- '%.17g', as tostring() would lose digits) as of 'ra' (ms), with the items done up to
-- 'rd' folded in; all absent: 0. The items done since fold in once a second per job (when
-- updated moves into another second) and when the job completes: those of earlier updates
-- as of the last one's time, as rules.progress folds them as it reads meanwhile, then
-- this update's as of now (rules.fold). An abort's own items never count.
-- Counts stay below 2^53, so Lua's doubles hold them exactly, and redis.call
-- writes integral doubles as plain digits (tostring() would not: 1.7e+12).

local TAU = 60000  -- jobtrack.rules.RATE_TAU_MS (commands.py checks that they agree)

local function add_rate(r, since, done, at)  -- rules.add_rate, step for step
  local dt = at - since
  if dt <= 0 then return r + done * 1000 / TAU, since end
  local decay = math.exp(math.max(-dt / TAU, -700))
  return r * decay + done * 1000 * (1 - decay) / dt, at
end

local v = redis.call('HMGET', KEYS[1], 't', 'p', 's', 'f', 'e', 'st', 'up', 'fin', 'x', 'r', 'ra', 'rd')
if not v[1] then
  return {'missing'}
end
local total = tonumber(v[1])
local processed = tonumber(v[2])
local successful = tonumber(v[3])
local failed = tonumber(v[4])
local dp, ds, df = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local error_text = ARGV[7]
local item = ARGV[10]
if item == '' then item = false end
local packed, state, outcome, new_state, failing = false, 0, 0, 0, false
if item then
  packed = redis.call('HGET', KEYS[2], item)
  local item_error = ''
  if packed then
    state = tonumber(string.sub(packed, 1, 1))
    item_error = string.match(packed, '^%d\n[^\n]*\n[^\n]*\n[^\n]*\n(.*)$') or ''
  end
  outcome = state - state % 2
  new_state = state
  if dp == 1 and state % 2 == 0 then new_state = new_state + 1 end
  if ds == 1 then
    if outcome ~= 4 then new_state = new_state % 2 + 4 end
  elseif df == 1 and (outcome == 0 or (outcome == 2 and error_text ~= '' and error_text ~= item_error)) then
    new_state = new_state % 2 + 2
    failing = true
  end
  if new_state == state and not failing then  -- a redelivery: nothing changes
    return {'ok', v[1], processed, successful, failed, v[5] or false, v[6], tonumber(v[7]), v[8] or false,
            v[9] or false, v[10] or '0', v[11] or '0', v[12] or '0'}
  end
  dp = new_state % 2 - state % 2
  ds = 0
  if new_state >= 4 and outcome ~= 4 then ds = 1 end
  df = 0
  if new_state - new_state % 2 == 2 then df = 1 end
  if outcome == 2 then df = df - 1 end
  if not failing then error_text = '' end
end
if v[8] then
  return {'finished'}
end
if ARGV[12] and ARGV[12] ~= '' and ARGV[12] ~= v[7] then
  return {'changed'}
end
local before = failed
local set = {'HSET', KEYS[1]}
local n = 2
local total_out = v[1]
local more = tonumber(ARGV[9] or '0')
if more > 0 then
  total = total + more
  if total > 9007199254740991 then
    return {'invalid', 'total', total, 9007199254740991}
  end
  total_out = total
  set[n + 1] = 't'; set[n + 2] = total; n = n + 2
end
if ARGV[8] == '1' then
  if failed ~= total - successful then
    failed = total - successful
    set[n + 1] = 'f'; set[n + 2] = failed; n = n + 2
  end
else
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
local was = tonumber(v[7])
local updated = was
local now = tonumber(ARGV[1])
if now > updated then
  updated = now
  set[n + 1] = 'up'; set[n + 2] = ARGV[1]; n = n + 2
end
local moved = updated - updated % 1000 ~= was - was % 1000  -- into another second
local folded = tonumber(v[12] or '0')
local rate, rate_at, rate_done = v[10] or '0', tonumber(v[11] or '0'), folded
if moved or successful + failed == total then  -- the rate moves: once a second, and at the end
  local earlier = tonumber(v[3]) + before - folded  -- done by earlier updates: as of 'was'
  local own = successful + failed - folded - earlier  -- done by this one (an abort's: never)
  if ARGV[8] == '1' then own = 0 end
  if earlier > 0 or own > 0 then
    local r, since = tonumber(rate), rate_at
    if since == 0 then since = tonumber(v[6]) end
    if earlier > 0 then r, since = add_rate(r, since, earlier, was) end
    if own > 0 then r, since = add_rate(r, since, own, now) end
    rate, rate_at = string.format('%.17g', r), since
    set[n + 1] = 'r'; set[n + 2] = rate; set[n + 3] = 'ra'; set[n + 4] = rate_at; n = n + 4
  end
  if successful + failed ~= folded then
    rate_done = successful + failed
    set[n + 1] = 'rd'; set[n + 2] = rate_done; n = n + 2
  end
end
local last_error = v[5] or false
if error_text and error_text ~= '' then
  last_error = error_text
  set[n + 1] = 'e'; set[n + 2] = error_text; n = n + 2
end
local finished, expires, keep = false, false, false
if successful + failed == total then
  local jid = string.sub(KEYS[1], #KEYS[5] + 1)
  finished = updated
  set[n + 1] = 'fin'; set[n + 2] = updated; n = n + 2
  redis.call('ZREM', KEYS[6], jid)
  redis.call('ZREM', KEYS[8], jid)
  redis.call('ZADD', KEYS[7], v[6], jid)
  -- (expiring after year 9999 is never, as in rules.expiry)
  if ARGV[5] and ARGV[5] ~= '' and updated + tonumber(ARGV[5]) <= 253402300799999 then
    local retain, remember = tonumber(ARGV[5]), tonumber(ARGV[6])
    expires = updated + retain
    set[n + 1] = 'x'; set[n + 2] = expires; n = n + 2
    redis.call('ZADD', KEYS[9], expires, jid)
    local due = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', now - remember, 'LIMIT', 0, 2)
    for _, old in ipairs(due) do  -- their hashes go by their own TTLs
      redis.call('ZREM', KEYS[5], old)
      redis.call('ZREM', KEYS[7], old)
      redis.call('ZREM', KEYS[9], old)
    end
    if retain + remember < 9e15 then keep = retain + remember end  -- else: until deleted
  end
else
  if moved then  -- into another second: the stalled index moves
    redis.call('ZADD', KEYS[8], updated - updated % 1000, string.sub(KEYS[1], #KEYS[5] + 1))
  end
end
if n > 2 then
  redis.call(unpack(set))
end
local counted = 0
if item then
  if failing then
    local position = redis.call('HINCRBY', KEYS[1], 'q', 1)
    redis.call('HSET', KEYS[2], item,
      string.format('%d\n%d\n%d\n', new_state, position, updated) .. ARGV[11] .. '\n' .. error_text)
    redis.call('ZADD', KEYS[3], position, item)
    if error_text ~= '' then counted = 1 end
  elseif new_state - new_state % 2 == 2 then  -- a failed item, processed only now
    redis.call('HSET', KEYS[2], item, new_state .. string.sub(packed, 2))
  else
    redis.call('HSET', KEYS[2], item, new_state)
    if outcome == 2 then redis.call('ZREM', KEYS[3], item) end
  end
elseif error_text and error_text ~= '' then
  counted = failed - before
end
if counted > 0 then
  local group = error_text
  local count = redis.call('HGET', KEYS[4], group)
  if not count and redis.call('HLEN', KEYS[4]) - redis.call('HEXISTS', KEYS[4], '') >= 100 then
    group = ''
    count = redis.call('HGET', KEYS[4], group)
  end
  local first = updated
  if count then
    local c, f = string.match(count, '^(%d+) (%-?%d+)')
    counted = math.min(counted + tonumber(c), 9007199254740991)  -- rules.add_count
    first = f
  end
  redis.call('HSET', KEYS[4], group, string.format('%d %d %d', counted, first, updated))
end
if keep then  -- last: the item keys may have been made just now
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
end
if finished then  -- the namespace's keys live as long as its longest-lived job
  namespace_lives({KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]}, KEYS[10], keep or true)
end
-- only the fields that change are written; total and started_at go back as
-- read (digit strings): converting numbers costs server time on every update
-- wake the job's watchers (feed.py): sharded pub/sub (Redis >= 7), on the job key's hash tag
redis.call(redis.REDIS_VERSION_NUM and 'SPUBLISH' or 'PUBLISH', KEYS[1], updated)
return {'ok', total_out, processed, successful, failed, last_error, v[6], updated, finished, expires,
        rate, rate_at, rate_done}
