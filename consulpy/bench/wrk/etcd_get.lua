-- POST /v3/kv/range {"key": b64} through etcd's JSON gateway, for keys the driver preloaded.
-- etcd answers 200 without "kvs" for a missing key; that counts as an error here.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local kv = require("kvbench")

local headers = { ["Content-Type"] = "application/json" }
local keys_b64 = {}

kv.body_ok = function(body) return body:find('"kvs"', 1, true) ~= nil end

function request()
  local i = kv.next_index()
  local key = keys_b64[i]
  if not key then
    key = kv.b64(kv.key(i))
    keys_b64[i] = key
  end
  return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. key .. '"}')
end
