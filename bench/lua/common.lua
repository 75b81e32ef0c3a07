-- Shared by the wrk scripts: the bearer token, per-thread ids and the JSON summary printed by done().
local common = {}

common.token = os.getenv("BENCH_TOKEN") or ""
common.threads = {}

function common.headers(extra)
  local h = { ["Authorization"] = "Bearer " .. common.token }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

function common.setup(thread)
  thread:set("tid", #common.threads)
  table.insert(common.threads, thread)
end

function common.lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

local function encode(value)
  local kind = type(value)
  if kind == "table" then
    local parts = {}
    for k, v in pairs(value) do
      parts[#parts + 1] = string.format("%q:%s", tostring(k), encode(v))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif kind == "string" then
    return string.format("%q", value)
  elseif value == nil then
    return "null"
  end
  return tostring(value)
end

-- One line "BENCHJSON {...}" with wrk's totals, latency percentiles (ms) and script counters.
function common.report(summary, latency, counters)
  local e = summary.errors
  local out = {
    requests = summary.requests,
    duration_s = summary.duration / 1e6,
    socket_errors = e.connect + e.read + e.write + e.timeout,
    status_errors = e.status,
    p50_ms = latency:percentile(50) / 1000,
    p95_ms = latency:percentile(95) / 1000,
    p99_ms = latency:percentile(99) / 1000,
    counters = counters or {},
  }
  io.write("BENCHJSON " .. encode(out) .. "\n")
end

return common
