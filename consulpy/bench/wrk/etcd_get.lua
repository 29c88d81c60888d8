-- POST /v3/kv/range {"key": b64} through etcd's JSON gateway, for keys the driver preloaded.
-- etcd answers 200 without "kvs" for a missing key; that counts as an error here.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local kv = require("kvbench")

local headers = { ["Content-Type"] = "application/json" }

kv.body_ok = function(body) return body:find('"kvs"', 1, true) ~= nil end

function request()
  local key = kv.key_b64(kv.next_index())
  return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. key .. '"}')
end
