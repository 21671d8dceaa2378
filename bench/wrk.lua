-- One wrk script for every scenario, configured by environment variables (set by run.py):
--   BENCH_KIND   get_item | list | create | patch | adjust | login | mixed | path
--   BENCH_PATH   the path (and query) that kind `path` gets
--   BENCH_IDS    item ids to read are 1..BENCH_IDS; PATCH uses 1..BENCH_PATCH_IDS, split
--                between threads so two requests rarely race for one row
--   BENCH_TOKEN  bearer token (create, patch, mixed)
--   BENCH_USERS (or BENCH_USER), BENCH_PASSWORD  form fields for login (users in turn)
--   BENCH_DELAY_MS  pause before each request on a connection (a paced probe, not a flood)
-- done() prints one line "BENCH_JSON {...}" with the counts and latency percentiles (µs).

local kind = os.getenv("BENCH_KIND") or "get_item"
local ids = tonumber(os.getenv("BENCH_IDS") or "100")
local patch_ids = tonumber(os.getenv("BENCH_PATCH_IDS") or "1000")
local token = os.getenv("BENCH_TOKEN") or ""
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local path = os.getenv("BENCH_PATH") or "/items?limit=20"

local threads = {}
local thread_no = 0

function setup(thread)
   thread_no = thread_no + 1
   thread:set("no", thread_no)
   table.insert(threads, thread)
end

local n = 0
local first_id, span
local json_headers = { ["Content-Type"] = "application/json" }
local auth_headers = {
   ["Content-Type"] = "application/json",
   ["Authorization"] = "Bearer " .. token,
}
local form_headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
-- BENCH_USERS: comma-separated usernames, taken in turn (one user from one address would
-- meet the login throttle's limits, not the hasher's)
local users = {}
for u in string.gmatch(os.getenv("BENCH_USERS") or os.getenv("BENCH_USER") or "", "[^,]+") do
   table.insert(users, u)
end
local password = os.getenv("BENCH_PASSWORD") or ""

function init(args)
   math.randomseed(no * 7919 + os.time())
   local count = tonumber(os.getenv("BENCH_THREADS") or "1")
   span = math.floor(patch_ids / count)
   first_id = (no - 1) * span + 1
end

local function get_item()
   return wrk.format("GET", "/items/" .. math.random(1, ids))
end

local function list()
   return wrk.format("GET", "/items?limit=20")
end

local function create()
   return wrk.format("POST", "/items", auth_headers,
      '{"name": "Bench item ' .. no .. "-" .. n .. '", "quantity": ' .. (n % 1000) .. "}")
end

local function patch()
   local id = first_id + (n % span)
   return wrk.format("PATCH", "/items/" .. id, auth_headers,
      '{"quantity": ' .. (n % 100000) .. "}")
end

local function adjust()
   local id = first_id + (n % span)
   return wrk.format("POST", "/items/" .. id .. "/adjust", auth_headers,
      '{"delta": 1, "reason": "received"}')
end

local function login()
   local user = users[(n % #users) + 1]
   return wrk.format("POST", "/token", form_headers, "username=" .. user .. "&password=" .. password)
end

-- Reads, and writes through the bearer check, without growing the table.
local mix = { get_item, get_item, get_item, list, list, list, patch }

local function get_path()
   return wrk.format("GET", path)
end

local kinds = {
   get_item = get_item, list = list, create = create, patch = patch, adjust = adjust, login = login,
   path = get_path,
}

function request()
   n = n + 1
   if kind == "mixed" then
      return mix[(n % #mix) + 1]()
   end
   return kinds[kind]()
end

if delay_ms > 0 then
   function delay()
      return delay_ms
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local p = {}
   for _, q in ipairs({ 50, 90, 99, 99.9 }) do
      table.insert(p, string.format('"%s": %d', tostring(q), latency:percentile(q)))
   end
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
      '"write": %d, "status": %d, "timeout": %d, "max_us": %d, "mean_us": %.1f, ' ..
      '"percentiles_us": {%s}}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency.max, latency.mean, table.concat(p, ", ")))
end
