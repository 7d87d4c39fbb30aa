-- wrk script for bench/run.py: each request its own JSON body, read from a file.
--
--   wrk -t THREADS -s bench/requests.lua URL -- BODIES THREADS TOKEN KEY METHOD MODE
--
-- BODIES: a file of one JSON body per line, or "-" for none (GET).
-- KEY: an Idempotency-Key sent with every request, or "-".
-- MODE "once": threads take interleaved lines, so no two requests share a body; a
-- thread that runs out sends GET /healthz instead and counts it as `exhausted` (not
-- a capture, and not an error: the report says to seed more). MODE "repeat": every
-- thread cycles through all lines.

local threads = {}
local count = 0

function setup(thread)
  thread:set("id", count)
  count = count + 1
  table.insert(threads, thread)
end

function init(args)
  local path, threads_total, token = args[1], tonumber(args[2]), args[3]
  local key, method = args[4], args[5]
  repeat_mode = args[6] == "repeat"
  bodies, index, exhausted = {}, 0, 0
  if path ~= "-" then
    local line_number = 0
    for line in io.lines(path) do
      if repeat_mode or line_number % threads_total == id then
        table.insert(bodies, line)
      end
      line_number = line_number + 1
    end
  end
  wrk.method = method
  wrk.headers["Authorization"] = "Token " .. token
  if method == "POST" then
    wrk.headers["Content-Type"] = "application/json"
  end
  if key ~= "-" then
    wrk.headers["Idempotency-Key"] = key
  end
end

function request()
  if #bodies == 0 then
    return wrk.format()
  end
  index = index + 1
  if index > #bodies then
    if not repeat_mode then
      exhausted = exhausted + 1
      return wrk.format("GET", "/healthz", {}, "")
    end
    index = 1
  end
  return wrk.format(nil, nil, nil, bodies[index])
end

function done(summary, latency, requests)
  local exhausted_total = 0
  for _, thread in ipairs(threads) do
    exhausted_total = exhausted_total + thread:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"exhausted": %d, "latency_us": {"p50": %d, "p95": %d, "p99": %d, "mean": %.1f, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, exhausted_total,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean, latency.max))
end
