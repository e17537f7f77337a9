-- delete.lua: remove a job, its index entry, its items and error counts, atomically.
--
-- KEYS[1]  the job's hash          <prefix>:{<namespace>}:job:<job_id>
-- KEYS[2]  the namespace's index   <prefix>:{<namespace>}:jobs
-- KEYS[3..5] the job's items, failed items and error counts (see update.lua)
-- ARGV[1]  job id (the index member)
--
-- Returns 1 if the job existed, else 0.

local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
return existed
