-- POST /v3/kv/put {"key": b64, "value": b64} through etcd's JSON gateway.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local kv = require("kvbench")

local headers = { ["Content-Type"] = "application/json" }
local value_b64

kv.on_init = function()
  value_b64 = kv.b64(kv.value)
end

-- A successful put answers a JSON object with a "header"; errors carry "error"/"code".
kv.body_ok = function(body) return body:find('"header"', 1, true) ~= nil end

function request()
  local key = kv.key_b64(kv.next_index())
  return wrk.format("POST", "/v3/kv/put", headers,
    '{"key":"' .. key .. '","value":"' .. value_b64 .. '"}')
end
