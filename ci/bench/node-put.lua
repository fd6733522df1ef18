-- PUT {"value":"<256 bytes>"} to /kv/<8-byte key> on the project's node.
dofile(os.getenv('BENCH_DIR') .. '/common.lua')
local body = '{"value":"' .. VALUE .. '"}'
function request()
  return wrk.format('PUT', '/kv/' .. next_key(), {['content-type'] = 'application/json'}, body)
end
