-- tidy.lua: drop index entries whose job is gone (evicted, or deleted by hand), atomically.
--
-- KEYS[1]      the namespace's index   <prefix>:{<namespace>}:jobs   (sorted set)
-- KEYS[2..n]   the jobs' hashes        <prefix>:{<namespace>}:job:<job_id>
-- ARGV[1..n-1] the jobs' ids, in the order of KEYS[2..n]
--
-- An entry is removed only if its hash does not exist now, so a job started
-- again meanwhile keeps its entry. Returns how many entries were removed.

local removed = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
