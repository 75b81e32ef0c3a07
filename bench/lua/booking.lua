-- Hold + confirm cycles (docs/BOOKING.md) over the candidate slots of BENCH_SLOTS.
-- A line: index <TAB> hold body <TAB> start <TAB> end. Each thread books every n-th line.
-- Responses are matched to their request by the X-Request-ID the service echoes.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local run = os.getenv("BENCH_RUN_ID") or "run"
local slots = {}
local next_slot = 0
local held = {}      -- slot index -> {start, end} while its hold is in flight
local confirms = {}  -- ready confirm requests
local outstanding = 0  -- holds and confirms sent and not yet answered
holds_ok, bookings, conflicts, errors, exhausted = 0, 0, 0, 0, 0
codes = {}

setup = common.setup

function init(args)
  local count = tonumber(args[1]) or 1
  local i = 0
  for _, line in ipairs(common.lines(os.getenv("BENCH_SLOTS"))) do
    if i % count == (tid or 0) then slots[#slots + 1] = line end
    i = i + 1
  end
end

local function post(path, rid, body)
  outstanding = outstanding + 1
  local headers = common.headers({
    ["Content-Type"] = "application/json",
    ["X-Request-ID"] = rid,
    ["Idempotency-Key"] = run .. "-" .. rid,
  })
  return wrk.format("POST", path, headers, body)
end

function request()
  local confirm = table.remove(confirms)
  if confirm then return post("/sessions/confirm", confirm.rid, confirm.body) end
  next_slot = next_slot + 1
  if next_slot > #slots then
    -- Out of candidate slots: let the cycles in flight finish with cheap /healthz requests (not
    -- counted as bookings or errors; the run reports `exhausted`, and req/s is then inflated).
    exhausted = 1
    if outstanding == 0 then wrk.thread:stop() end
    return wrk.format("GET", "/healthz", { ["X-Request-ID"] = "x" })
  end
  local index, body, first, last = slots[next_slot]:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)")
  held[index] = { first, last }
  return post("/sessions/hold", "h" .. index, body)
end

local function failed(status, body)
  local code = body:match('"code"%s*:%s*"([^"]+)"') or ("HTTP_" .. status)
  codes[code] = (codes[code] or 0) + 1
  if status == 409 then conflicts = conflicts + 1 else errors = errors + 1 end
end

function response(status, headers, body)
  local rid = headers["x-request-id"] or headers["X-Request-ID"] or ""
  local kind, index = rid:sub(1, 1), rid:sub(2)
  if kind == "h" or kind == "c" then outstanding = outstanding - 1 end
  if kind == "h" then
    local slot = held[index]
    held[index] = nil
    if status ~= 200 then return failed(status, body) end
    holds_ok = holds_ok + 1
    local key = body:match('"hold_key"%s*:%s*"([^"]+)"')
    confirms[#confirms + 1] = {
      rid = "c" .. index,
      body = string.format('{"hold_key":"%s","session":{"start_time":"%s","end_time":"%s"}}',
        key, slot[1], slot[2]),
    }
  elseif kind == "c" then
    if status == 200 then bookings = bookings + 1 else failed(status, body) end
  elseif kind ~= "x" then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local totals = { holds = 0, bookings = 0, conflicts = 0, errors = 0, exhausted = 0, codes = {} }
  for _, thread in ipairs(common.threads) do
    totals.holds = totals.holds + thread:get("holds_ok")
    totals.bookings = totals.bookings + thread:get("bookings")
    totals.conflicts = totals.conflicts + thread:get("conflicts")
    totals.errors = totals.errors + thread:get("errors")
    totals.exhausted = math.max(totals.exhausted, thread:get("exhausted"))
    for code, n in pairs(thread:get("codes") or {}) do
      totals.codes[code] = (totals.codes[code] or 0) + n
    end
  end
  common.report(summary, latency, totals)
end
