-- Shared by the benchmark scripts: per-thread key counters, base64, and a
-- machine-readable summary line that node-vs-etcd.sh parses.
-- Keys are 8 bytes (k0000000..k0099999), values 256 bytes. Read scripts lower
-- KEYSPACE to keys the 1-connection write run certainly wrote, skipping k0000000
-- (wrk spends the first request() call of a thread on a probe it never sends).
local threads = {}
function setup(thread) thread:set('tid', #threads); table.insert(threads, thread) end
function init(args) ctr = tid * 7919 end
KEYSPACE = 100000
KEY_BASE = 0
function next_key()
  local k = string.format('k%07d', KEY_BASE + ctr % KEYSPACE)
  ctr = ctr + 1
  return k
end
local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
VALUE = string.rep('v', 256)
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format('RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d\n',
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, bad))
end
