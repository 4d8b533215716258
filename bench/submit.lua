-- wrk script for POST /process_audio_v2/{user_id}: sends the bearer token and records
-- every task_id acknowledged with 200. Settings come from the environment:
-- BENCH_PATH, BENCH_TOKEN (may be empty), BENCH_OUT (a JSON summary is written there).
local path = os.getenv("BENCH_PATH")
local token = os.getenv("BENCH_TOKEN") or ""
local out = os.getenv("BENCH_OUT")
local threads = {}

wrk.method = "POST"
wrk.path = path
wrk.body = ""
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ids = {}
  ok = 0
  other = 0
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    local id = string.match(body, '"task_id":"([%x%-]+)"')
    if id then ids[#ids + 1] = id end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local f = assert(io.open(out, "w"))
  local total_ok, total_other = 0, 0
  local all = {}
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
    for _, id in ipairs(t:get("ids")) do all[#all + 1] = '"' .. id .. '"' end
  end
  local e = summary.errors
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "ok": %d, "non_200": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"task_ids": [%s]}',
    summary.requests, summary.duration, total_ok, total_other,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    table.concat(all, ",")))
  f:close()
end
