-- Replays the request paths of BENCH_PATHS (one per line) round-robin; threads start apart.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local paths = {}
local position = 0

setup = common.setup

function init(args)
  paths = common.lines(os.getenv("BENCH_PATHS"))
  position = (tid or 0) * math.floor(#paths / 2)
end

function request()
  position = position % #paths + 1
  return wrk.format("GET", paths[position], common.headers())
end

function done(summary, latency, requests)
  common.report(summary, latency)
end
