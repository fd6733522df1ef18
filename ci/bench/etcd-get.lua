-- etcd v3 JSON gateway: linearizable POST /v3/kv/range of one 8-byte key.
dofile(os.getenv('BENCH_DIR') .. '/common.lua')
KEYSPACE = 999
KEY_BASE = 1
function request()
  local body = '{"key":"' .. b64(next_key()) .. '"}'
  return wrk.format('POST', '/v3/kv/range', {['content-type'] = 'application/json'}, body)
end
