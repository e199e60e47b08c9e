-- wrk script for scripts/bench.sh: prints one JSON line with the summary; with WRK_BODY set,
-- sends POST requests whose body has `{id}` replaced by a unique JSON-RPC id (per thread
-- prefix + counter), with WRK_SESSION as Mcp-Session-Id.
local body_tpl = os.getenv("WRK_BODY")
local session = os.getenv("WRK_SESSION")
local threads = 0
local counter = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

if body_tpl and body_tpl ~= "" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  if session and session ~= "" then
    wrk.headers["Mcp-Session-Id"] = session
  end
  request = function()
    counter = counter + 1
    local id = tostring((tid or 0) * 100000000 + counter)
    return wrk.format(nil, nil, nil, (body_tpl:gsub("{id}", id)))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"kind":"wrk","requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,'
      .. '"err_write":%d,"err_timeout":%d,"non2xx":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout,
    e.status, summary.requests / (summary.duration / 1e6), latency:percentile(50),
    latency:percentile(99)))
end
