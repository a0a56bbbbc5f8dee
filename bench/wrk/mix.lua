-- Cycle through the requests listed in BENCH_MIX (one per line: METHOD PATH CONTENT-TYPE FILE, "-" for none)
-- and count the answers by status class across all threads.
local threads = {}
local requests = {}
local index = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_MIX")) do
    local method, path, content_type, file = line:match("^(%S+) (%S+) (%S+) (%S+)$")
    local headers, body = {}, nil
    if file ~= "-" then
      local f = assert(io.open(file, "rb"))
      body = f:read("*a")
      f:close()
      headers["Content-Type"] = content_type
    end
    table.insert(requests, wrk.format(method, path, headers, body))
  end
  index = math.random(#requests)
  ok, client_errors, server_errors, other = 0, 0, 0, 0
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function response(status, headers, body)
  if status >= 500 then server_errors = server_errors + 1
  elseif status >= 400 then client_errors = client_errors + 1
  elseif status >= 200 and status < 300 then ok = ok + 1
  else other = other + 1 end
end

function done(summary, latency, _)
  local totals = {ok = 0, client_errors = 0, server_errors = 0, other = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + thread:get(name) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "ok": %d, "client_errors": %d, "server_errors": %d, ' ..
    '"other": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, totals.ok, totals.client_errors, totals.server_errors, totals.other,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
