-- Deep keyset paging: each chain starts at a path of BENCH_PATHS and follows next_cursor to the end.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local starts = {}
local position = 0
local pending = {}   -- next pages to fetch (any connection of this thread may take one)
local pages = 0

setup = common.setup

function init(args)
  starts = common.lines(os.getenv("BENCH_PATHS"))
  position = (tid or 0) * math.floor(#starts / 2)
end

function request()
  local path = table.remove(pending)
  if path == nil then
    position = position % #starts + 1
    path = starts[position]
  end
  return wrk.format("GET", path, common.headers())
end

function response(status, headers, body)
  if status ~= 200 then return end
  pages = pages + 1
  local cursor = body:match('"next_cursor"%s*:%s*"([^"]+)"')
  local base = body:match('"therapist_id"%s*:%s*"([^"]+)"')
  if cursor and base then
    pending[#pending + 1] = "/get-sessions-optimized?limit=50&therapist_id=" .. base
      .. "&cursor=" .. cursor
  end
end

function done(summary, latency, requests)
  common.report(summary, latency)
end
