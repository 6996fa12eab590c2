-- wrk: 2025-11-25 tools/call of get_conversation within sessions opened before the run
-- (HOP_SESSIONS: their ids, comma-separated, one per connection; each request takes the next
-- session of its thread's share in turn). HOP_CONVERSATION: the conversation's id.
local sessions = {}
for id in string.gmatch(os.getenv("HOP_SESSIONS"), "[^,]+") do
  sessions[#sessions + 1] = id
end
local started = 0
function setup(thread)
  thread:set("index", started)
  started = started + 1
end
local body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_conversation",'
  .. '"arguments":{"conversationId":"' .. os.getenv("HOP_CONVERSATION") .. '"}}}'
local headers = {
  ["Content-Type"] = "application/json",
  ["Accept"] = "application/json, text/event-stream",
  ["MCP-Protocol-Version"] = "2025-11-25",
}
local nthreads = tonumber(os.getenv("HOP_THREADS") or "2")
local turn = 0
function request()
  -- Thread i of n takes sessions i, i + n, i + 2n, …
  local share = math.floor(#sessions / nthreads)
  local k = (index or 0) + nthreads * (turn % share) + 1
  turn = turn + 1
  headers["Mcp-Session-Id"] = sessions[k]
  return wrk.format("POST", "/mcp", headers, body)
end
