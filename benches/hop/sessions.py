"""Opens N 2025-11-25 sessions on an MCP endpoint (initialize, then notifications/initialized),
as N clients would, and prints their Mcp-Session-Id values, comma-separated.
Usage: sessions.py URL N"""
import json
import sys
import urllib.request

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def post(url, message, session=None):
    headers = dict(HEADERS)
    if session:
        headers["Mcp-Session-Id"] = session
        headers["MCP-Protocol-Version"] = "2025-11-25"
    request = urllib.request.Request(url, json.dumps(message).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
        return answer.headers.get("Mcp-Session-Id")


def main():
    url, n = sys.argv[1], int(sys.argv[2])
    sessions = []
    for i in range(n):
        session = post(url, {
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": f"hop-{i}", "version": "1"}},
        })
        if not session:
            sys.exit("the initialize answer carried no Mcp-Session-Id")
        post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
        sessions.append(session)
    print(",".join(sessions))


if __name__ == "__main__":
    main()
