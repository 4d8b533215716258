-- wrk script for GET requests over many paths: each request takes a random line of the file
-- BENCH_PATHS (one path a line) and sends the bearer token BENCH_TOKEN. The summary (status
-- counts and latency percentiles) is written as JSON to BENCH_OUT.
local token = os.getenv("BENCH_TOKEN") or ""
local out = os.getenv("BENCH_OUT")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
  ok = 0
  other = 0
  math.randomseed(os.time())
end

function request()
  local headers = {}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("GET", paths[math.random(#paths)], headers)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local f = assert(io.open(out, "w"))
  local total_ok, total_other = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
  end
  local e = summary.errors
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "ok": %d, "non_200": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}',
    summary.requests, summary.duration, total_ok, total_other,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
  f:close()
end
