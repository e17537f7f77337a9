-- delete.lua: remove a job and its index entry, atomically.
--
-- KEYS[1]  the job's hash          <prefix>:{<namespace>}:job:<job_id>
-- KEYS[2]  the namespace's index   <prefix>:{<namespace>}:jobs
-- ARGV[1]  job id (the index member)
--
-- Returns 1 if the job existed, else 0.

local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return existed
