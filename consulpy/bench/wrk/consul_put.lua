-- PUT /v1/kv/<prefix><i> with a value of `size` bytes; Consul answers `true` on success.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local kv = require("kvbench")

kv.body_ok = function(body) return body:find("true", 1, true) ~= nil end

function request()
  return wrk.format("PUT", "/v1/kv/" .. kv.key(kv.next_index()), kv.headers, kv.value)
end
