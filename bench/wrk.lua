-- wrk script for kefu's HTTP benchmark (bench/run drives it).
--
--   wrk -t2 -c64 -d10s -s bench/wrk.lua http://127.0.0.1:PORT -- QUERIES [EXTRA]
--
-- QUERIES is a file of URL-encoded queries, one per line (examples/synth_kb
-- writes it). Each connection walks the file from its own offset, so the
-- server sees the stream's real mix of short, long and no-hit questions and
-- never one cached question. EXTRA is appended to every request's query
-- string (for example "&platform=tmall&product=SKU-10001").
-- At the end one JSON line, prefixed "KEFU-WRK ", carries what bench/run
-- tabulates: requests, seconds, errors and latency percentiles in ms.

local queries = {}
local extra = ""
local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   extra = args[2] or ""
   for line in io.lines(path) do
      if #line > 0 then
         table.insert(queries, line)
      end
   end
   if #queries == 0 then
      error("no queries in " .. path)
   end
   -- Spread connections over the file: thread `id` starts a slice in.
   position = (id * 7919) % #queries
end

function request()
   position = position % #queries + 1
   return wrk.format("GET", "/v1/search?q=" .. queries[position] .. extra)
end

function done(summary, latency, requests)
   local errors = summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout
   io.write(string.format(
      'KEFU-WRK {"requests":%d,"seconds":%.3f,"errors":%d,"status_errors":%d,'
         .. '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"max_ms":%.3f}\n',
      summary.requests, summary.duration / 1e6, errors, summary.errors.status,
      latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
      latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3, latency.max / 1e3))
end
