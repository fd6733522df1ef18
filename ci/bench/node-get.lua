-- Linearizable GET /kv/<8-byte key> on the project's node (keys written by node-put.lua).
dofile(os.getenv('BENCH_DIR') .. '/common.lua')
KEYSPACE = 999
KEY_BASE = 1
function request()
  return wrk.format('GET', '/kv/' .. next_key())
end
