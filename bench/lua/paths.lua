-- Requests cycle through the lines of the file named by WRK_PATHS ("METHOD path" each),
-- each wrk thread starting at its own offset, with the Authorization header of WRK_AUTH.
local lines = {}
local counter = 0
local thread_offset = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_offset", threads * 7919)
end

function init(args)
  for line in io.lines(os.getenv("WRK_PATHS")) do lines[#lines + 1] = line end
  counter = thread_offset or 0
  wrk.headers["Authorization"] = os.getenv("WRK_AUTH")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local line = lines[(counter % #lines) + 1]
  local method, path, body = line:match("^(%S+) (%S+) ?(.*)$")
  if body == "" then body = nil end
  return wrk.format(method, path, nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("STATUS non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
