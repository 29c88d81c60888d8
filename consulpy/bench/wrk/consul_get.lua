-- GET /v1/kv/<prefix><i> (JSON list, or raw bytes with raw=1) of keys the driver preloaded;
-- a missing key answers 404 and counts as an error.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local kv = require("kvbench")

local suffix = ""
kv.on_init = function()
  suffix = kv.opts.raw == "1" and "?raw" or ""
end

function request()
  return wrk.format("GET", "/v1/kv/" .. kv.key(kv.next_index()) .. suffix, kv.headers)
end
