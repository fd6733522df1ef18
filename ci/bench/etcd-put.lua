-- etcd v3 JSON gateway: POST /v3/kv/put with base64 key and 256-byte value.
dofile(os.getenv('BENCH_DIR') .. '/common.lua')
local v64 = b64(VALUE)
function request()
  local body = '{"key":"' .. b64(next_key()) .. '","value":"' .. v64 .. '"}'
  return wrk.format('POST', '/v3/kv/put', {['content-type'] = 'application/json'}, body)
end
