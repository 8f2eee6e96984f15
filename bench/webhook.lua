-- wrk script of bench/webhook.py: POST exactly N unique LIKE MAGIC events, then stop.
--
--   wrk -t T -c C -d 10m --timeout 10s -s bench/webhook.lua URL \
--       -H 'lm-webhook-secret: SECRET' -- EVENT_FILE ID_PREFIX N T [LATENCY_FILE]
--
-- Every request carries EVENT_FILE (a JSON event) with its "id" replaced by
-- <ID_PREFIX>-<thread>-<counter>. Each of the T threads sends its share of N requests
-- and stops after its share of responses, printing "thread-done <thread>". wrk itself
-- only leaves at -d or on SIGINT: bench/webhook.py sends SIGINT once every thread is done.
--
-- Latencies are taken here, from the sending of each request to its answer (matched by
-- the eventId the API answers with), without wrk's coordinated-omission correction, so
-- they compare with the raw start_workflow latencies of bench/webhook.py. done() prints:
--
--   result requests=R non200=E socket_errors=S duration_ms=D p50_ms=P p99_ms=Q
--
-- where D runs from the first request sent to the last answer received. With
-- LATENCY_FILE, it also writes every latency there (ms, one per line).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local function percentile(sorted, p)
   if #sorted == 0 then
      return 0
   end
   local rank = math.ceil(p / 100 * #sorted)
   return sorted[math.max(1, math.min(#sorted, rank))]
end

-- Main state: the threads, for done().
local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

-- Thread states from here on (tid was set by setup before init runs).
local head, tail, prefix, share
local reserved, sent, pending = 0, 0, {}
responses, non200, latencies, first_ms, last_ms = 0, 0, {}, nil, nil

function init(args)
   local file = assert(io.open(args[1], "rb"))
   local event = file:read("*a")
   file:close()
   local id_start, id_end = event:find('"id"%s*:%s*"[^"]*"')
   assert(id_start, args[1] .. ': no "id" field')
   local field = event:sub(id_start, id_end)
   local quote = field:find('"[^"]*"$')
   head = event:sub(1, id_start + quote - 1)
   tail = event:sub(id_end)
   prefix = args[2] .. "-" .. tid .. "-"
   local total, count = tonumber(args[3]), tonumber(args[4])
   share = math.floor(total / count) + ((tid <= total % count) and 1 or 0)
   latency_file = args[5]
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

-- Called before every request: a connection goes idle once the share is handed out.
function delay()
   if reserved < share then
      reserved = reserved + 1
      return 0
   end
   return 3600 * 1000
end

function request()
   if reserved == 0 then
      -- wrk calls request() once at start-up to check it; that one is never sent.
      return wrk.format(nil, nil, nil, head .. "wrk-check" .. tail)
   end
   sent = sent + 1
   local id = prefix .. sent
   local now = now_ms()
   first_ms = first_ms or now
   pending[id] = now
   return wrk.format(nil, nil, nil, head .. id .. tail)
end

function response(status, headers, body)
   local now = now_ms()
   responses = responses + 1
   last_ms = now
   if status ~= 200 then
      non200 = non200 + 1
   end
   local id = body:match('"eventId"%s*:%s*"([^"]+)"')
   if id and pending[id] then
      latencies[#latencies + 1] = now - pending[id]
      pending[id] = nil
   end
   if responses >= share then
      io.write("thread-done ", tid, "\n")
      io.stdout:flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local all, count, bad, first, last = {}, 0, 0, nil, nil
   for _, thread in ipairs(threads) do
      count = count + thread:get("responses")
      bad = bad + thread:get("non200")
      local f, l = thread:get("first_ms"), thread:get("last_ms")
      if f and (not first or f < first) then
         first = f
      end
      if l and (not last or l > last) then
         last = l
      end
      for _, value in ipairs(thread:get("latencies")) do
         all[#all + 1] = value
      end
   end
   table.sort(all)
   local e = summary.errors
   io.write(string.format(
      "result requests=%d non200=%d socket_errors=%d duration_ms=%.1f p50_ms=%.2f p99_ms=%.2f\n",
      count,
      bad,
      e.connect + e.read + e.write + e.timeout,
      (first and last) and (last - first) or 0,
      percentile(all, 50),
      percentile(all, 99)
   ))
   local path = threads[1] and threads[1]:get("latency_file")
   if path then
      local out = assert(io.open(path, "w"))
      for _, value in ipairs(all) do
         out:write(string.format("%.3f\n", value))
      end
      out:close()
   end
end
