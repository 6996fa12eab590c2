-- wrk: a tools/call of the generated peer's GetConversation (stateless Streamable HTTP).
-- HOP_APP: the app id; HOP_CONVERSATION: the conversation's id.
wrk.method = "POST"
wrk.path = "/mcp"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"GetConversation",'
  .. '"arguments":{"appId":"' .. os.getenv("HOP_APP") .. '","conversationId":"'
  .. os.getenv("HOP_CONVERSATION") .. '"}}}'
