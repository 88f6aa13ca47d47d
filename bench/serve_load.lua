-- serve_load.lua — wrk script for bench/serve_load.sh: POSTs the JSON body in $LG_BODY (an image
-- for /v1/assess) on every request and counts the responses by status in each thread; done()
-- prints the counts and the latency percentiles as one JSON line.
local body_path = os.getenv("LG_BODY")
local f = assert(io.open(body_path, "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("LG_PATH") or "/v1/assess"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for s, n in pairs(c) do total[s] = (total[s] or 0) + n end
  end
  local parts = {}
  for s, n in pairs(total) do table.insert(parts, string.format('"%d":%d', s, n)) end
  io.write(string.format(
    '{"requests":%d,"duration_s":%.2f,"rps":%.3f,"p50_s":%.3f,"p90_s":%.3f,"p99_s":%.3f,' ..
    '"max_s":%.3f,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
    '"statuses":{%s}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e6, latency:percentile(90) / 1e6, latency:percentile(99) / 1e6,
    latency.max / 1e6, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status, table.concat(parts, ",")))
end
