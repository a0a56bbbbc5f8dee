-- POST one file as the body (or GET, with BENCH_METHOD=GET); optionally stop after N responses per thread; print a
-- JSON summary line.
wrk.method = os.getenv("BENCH_METHOD") or "POST"
if wrk.method == "POST" then
  local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
end
-- extra request headers, one "Name: value" per line
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

local limit = tonumber(os.getenv("BENCH_MAX_REQUESTS_PER_THREAD") or "0")
local count = 0
if limit > 0 then
  response = function(status, headers, body)
    count = count + 1
    if count >= limit then wrk.thread:stop() end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
