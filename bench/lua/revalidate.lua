-- Replays BENCH_PATHS lines "path<TAB>etag" round-robin with If-None-Match (a board reloading a
-- week it already shows); counts 304 and other answers per thread.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local entries = {}
local position = 0
not_modified = 0
answered = 0

setup = common.setup

function init(args)
  for _, line in ipairs(common.lines(os.getenv("BENCH_PATHS"))) do
    local path, etag = line:match("^([^\t]+)\t(.+)$")
    if path then entries[#entries + 1] = { path = path, etag = etag } end
  end
  position = (tid or 0) * math.floor(#entries / 2)
end

function request()
  position = position % #entries + 1
  local entry = entries[position]
  return wrk.format("GET", entry.path, common.headers({ ["If-None-Match"] = entry.etag }))
end

function response(status, headers, body)
  if status == 304 then
    not_modified = not_modified + 1
  else
    answered = answered + 1
  end
end

function done(summary, latency, requests)
  local totals = { not_modified = 0, answered = 0 }
  for _, thread in ipairs(common.threads) do
    totals.not_modified = totals.not_modified + thread:get("not_modified")
    totals.answered = totals.answered + thread:get("answered")
  end
  common.report(summary, latency, totals)
end
