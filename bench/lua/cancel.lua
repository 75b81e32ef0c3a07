-- POST /sessions/cancel (docs/BOOKING.md) of the session ids of BENCH_SESSIONS, each once.
-- A line: one session id. Each thread cancels every n-th line; when its share is used up the thread
-- stops (the run then reports `exhausted`: req/s is low, the latencies stay right).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local run = os.getenv("BENCH_RUN_ID") or "run"
local sessions = {}
local position = 0
local outstanding = 0
cancelled, errors, exhausted = 0, 0, 0
codes = {}

setup = common.setup

function init(args)
  local count = tonumber(args[1]) or 1
  local i = 0
  for _, line in ipairs(common.lines(os.getenv("BENCH_SESSIONS"))) do
    if i % count == (tid or 0) then sessions[#sessions + 1] = line end
    i = i + 1
  end
end

function request()
  position = position + 1
  if position > #sessions then
    exhausted = 1
    if outstanding == 0 then wrk.thread:stop() end
    -- Nothing left to cancel: a request wrk still sends is a cheap GET /healthz, not counted.
    return wrk.format("GET", "/healthz", { ["X-Request-ID"] = "x" })
  end
  local id = sessions[position]
  outstanding = outstanding + 1
  local headers = common.headers({
    ["Content-Type"] = "application/json",
    ["X-Request-ID"] = "c" .. id,
    ["Idempotency-Key"] = run .. "-cancel-" .. id,
  })
  local body = string.format('{"session_id":"%s","reason":"client_schedule_conflict"}', id)
  return wrk.format("POST", "/sessions/cancel", headers, body)
end

function response(status, headers, body)
  local rid = headers["x-request-id"] or headers["X-Request-ID"] or ""
  if rid:sub(1, 1) ~= "c" then return end
  outstanding = outstanding - 1
  if status == 200 then
    cancelled = cancelled + 1
  else
    errors = errors + 1
    local code = body:match('"code"%s*:%s*"([^"]+)"') or ("HTTP_" .. status)
    codes[code] = (codes[code] or 0) + 1
  end
end

function done(summary, latency, requests)
  local totals = { cancelled = 0, errors = 0, exhausted = 0, codes = {} }
  for _, thread in ipairs(common.threads) do
    totals.cancelled = totals.cancelled + thread:get("cancelled")
    totals.errors = totals.errors + thread:get("errors")
    totals.exhausted = math.max(totals.exhausted, thread:get("exhausted"))
    for code, n in pairs(thread:get("codes") or {}) do
      totals.codes[code] = (totals.codes[code] or 0) + n
    end
  end
  common.report(summary, latency, totals)
end
