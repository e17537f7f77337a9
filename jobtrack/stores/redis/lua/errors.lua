-- errors.lua: a job's error counts.
--
-- KEYS[1]  the job's hash          <prefix>:{<namespace>}:job:<job_id>
-- KEYS[2]  its error counts        <prefix>:{<namespace>}:errors:<job_id>
--
-- Returns false if there is no such job, else HGETALL of the counts: message
-- ('' for the group beyond the first 100 messages), "count first_ms last_ms".

if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
return redis.call('HGETALL', KEYS[2])
