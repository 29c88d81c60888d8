-- Shared part of the consulpy kv benchmark scripts for wrk (LuaJIT).
--
-- A script requires this module as `kv`, then defines request() from kv.next_index(), kv.key(i)
-- or kv.key_b64(i), and kv.value. The module owns the wrk hooks every script needs the same way:
--   setup()    numbers the threads, so each thread seeds and offsets its key sequence apart;
--   init()     reads the key=value arguments given after `--` on the wrk command line;
--   response() counts answers that are not 2xx (or fail the script's body check) as errors;
--   done()     prints one line `KVBENCH {json}` that the Python driver parses.
--
-- Arguments: keys=N (key space 0..N-1), spread=random|sequential, size=B (value bytes),
-- prefix=P (key prefix), threads=T (wrk -t), seed=S, raw=0|1 (consul GET ?raw),
-- token=T (consul: sent as X-Consul-Token when not empty).

local M = {}

M.opts = { keys = "1000", spread = "random", size = "128", prefix = "bench/kv/",
           threads = "1", seed = "1", raw = "0", token = "" }

-- Request headers of the consul scripts (the ACL token, when one is given).
M.headers = {}

-- Optional per-script check of a 2xx body; returns false to count the answer as an error.
M.body_ok = nil

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

local nkeys, sequential, cursor

function init(args)
  for _, arg in ipairs(args) do
    local k, v = arg:match("^([%w_]+)=(.*)$")
    if not k or M.opts[k] == nil then
      error("kvbench: unknown argument '" .. arg .. "'")
    end
    M.opts[k] = v
  end
  nkeys = assert(tonumber(M.opts.keys), "keys must be a number")
  assert(nkeys >= 1, "keys must be >= 1")
  sequential = M.opts.spread == "sequential"
  assert(sequential or M.opts.spread == "random", "spread must be random or sequential")
  local id = thread_id or 0
  local nthreads = tonumber(M.opts.threads) or 1
  -- Threads walk the key space from evenly spaced starting points.
  cursor = math.floor(id * nkeys / nthreads)
  math.randomseed((tonumber(M.opts.seed) or 1) * 7919 + id)
  local size = assert(tonumber(M.opts.size), "size must be a number")
  M.value = string.rep("v", size)
  bad = 0
  if M.opts.token ~= "" then M.headers["X-Consul-Token"] = M.opts.token end
  if M.on_init then M.on_init() end
end

function M.next_index()
  if sequential then
    local i = cursor
    cursor = (cursor + 1) % nkeys
    return i
  end
  return math.random(0, nkeys - 1)
end

function M.key(i)
  return M.opts.prefix .. i
end

-- base64 of key i, computed once per key (etcd's gateway wants bytes as base64).
local keys_b64 = {}
function M.key_b64(i)
  local k = keys_b64[i]
  if not k then
    k = M.b64(M.key(i))
    keys_b64[i] = k
  end
  return k
end

function response(status, headers, body)
  if status < 200 or status > 299 or (M.body_ok and not M.body_ok(body)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, t in ipairs(threads) do
    bad_total = bad_total + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'KVBENCH {"requests":%d,"duration_us":%d,"bad":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, bad_total, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end

-- Standard base64 (RFC 4648 with padding), for etcd's JSON gateway which wants bytes as base64.
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.b64(s)
  local out = {}
  for pos = 1, #s, 3 do
    local a, b, c = s:byte(pos, pos + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local d1 = math.floor(n / 262144) % 64
    local d2 = math.floor(n / 4096) % 64
    local d3 = math.floor(n / 64) % 64
    local d4 = n % 64
    out[#out + 1] = alphabet:sub(d1 + 1, d1 + 1) .. alphabet:sub(d2 + 1, d2 + 1) ..
      (b and alphabet:sub(d3 + 1, d3 + 1) or "=") .. (c and alphabet:sub(d4 + 1, d4 + 1) or "=")
  end
  return table.concat(out)
end

return M
