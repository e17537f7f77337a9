-- failed.lua: a page of a job's failed items, in the order they were listed.
--
-- KEYS[1]  the job's hash          <prefix>:{<namespace>}:job:<job_id>
-- KEYS[2]  the job's items         <prefix>:{<namespace>}:items:<job_id>
-- KEYS[3]  its failed items        <prefix>:{<namespace>}:failed:<job_id>
-- ARGV[1]  the position the page starts after ('' for the first page)
-- ARGV[2]  the page size
--
-- Returns false if there is no such job, else the packed values of the items
-- (see update.lua: "state\nposition\nfailed ms\nname\nerror").

if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local low = '-inf'
if ARGV[1] ~= '' then low = '(' .. ARGV[1] end
local fields = redis.call('ZRANGEBYSCORE', KEYS[3], low, '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
local page = {}
for i, field in ipairs(fields) do
  page[i] = redis.call('HGET', KEYS[2], field) or ''
end
return page
