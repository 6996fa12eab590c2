"""Calls every tool of a running `zendesk-messaging-mcp serve --simulator` with the official
Python MCP SDK (which speaks the 2026-07-28 stateless protocol), and checks the answers.

Usage: python every_tool.py http://127.0.0.1:PORT/mcp
Exits non-zero on the first failed check.
"""

import asyncio
import json
import sys
import time

import mcp

EXPECTED_TOOLS = {
    "list_conversations", "create_conversation", "get_conversation", "list_messages",
    "send_message", "get_message", "create_user", "get_user", "find_users", "update_user",
    "list_switchboards", "pass_control", "get_switchboard_status", "list_integrations",
    "get_integration", "offer_control", "accept_control", "release_control",
    "get_delivery_status", "list_delivery_failures", "claim_conversation",
    "release_conversation", "send_activity", "update_conversation",
}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Session:
    def __init__(self, client):
        self.client = client
        self.called = set()

    async def ok(self, tool, args):
        self.called.add(tool)
        r = await self.client.call_tool(tool, args)
        text = "".join(getattr(c, "text", "") for c in r.content)
        check(not r.is_error, f"{tool} failed: {text}")
        check(r.structured_content is not None, f"{tool}: no structuredContent")
        check(json.loads(text) == r.structured_content, f"{tool}: text and structuredContent differ")
        return r.structured_content

    async def err(self, tool, args):
        r = await self.client.call_tool(tool, args)
        text = "".join(getattr(c, "text", "") for c in r.content)
        check(r.is_error, f"{tool} should have failed: {text}")
        return text


async def main(url):
    async with mcp.Client(url) as client:
        print(f"connected, protocol {client.protocol_version}")
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        check(names == EXPECTED_TOOLS, f"tools differ: {sorted(names ^ EXPECTED_TOOLS)}")
        for t in tools.tools:
            check(t.input_schema.get("additionalProperties") is False, f"{t.name}: schema open")
            check(t.output_schema is not None, f"{t.name}: no output schema")
        s = Session(client)

        ext = f"py-sdk-{int(time.time() * 1000)}"
        user = (await s.ok("create_user", {"externalId": ext, "profile": {"givenName": "Py"}}))["user"]
        check((await s.ok("get_user", {"userId": ext}))["user"]["id"] == user["id"], "get_user")
        found = await s.ok("find_users", {"email": "ben.okafor@example.org"})
        check([u["externalId"] for u in found["users"]] == ["demo-user-02"], "find_users")
        upd = await s.ok("update_user", {"userId": user["id"], "metadata": {"tier": "gold"}})
        check(upd["user"]["metadata"]["tier"] == "gold", "update_user")

        conv = (await s.ok("create_conversation", {"participants": [{"userExternalId": ext}]}))["conversation"]
        cid = conv["id"]
        listed = await s.ok("list_conversations", {"userExternalId": ext})
        check(any(c["id"] == cid for c in listed["conversations"]), "list_conversations")
        check((await s.ok("get_conversation", {"conversationId": cid}))["conversation"]["id"] == cid, "get_conversation")
        kept = await s.ok("update_conversation", {"conversationId": cid, "metadata": {"botStep": "greeted"}})
        check(kept["conversation"]["metadata"] == {"botStep": "greeted"}, "update_conversation")

        sent = await s.ok("send_message", {"conversationId": cid, "content": {"type": "text", "text": "hello from Python"}})
        mid = sent["messages"][0]["id"]
        page = await s.ok("list_messages", {"conversationId": cid, "limit": 1})
        check(page["messages"][-1]["id"] == mid, "list_messages shows the newest")
        check((await s.ok("get_message", {"conversationId": cid, "messageId": mid}))["message"]["id"] == mid, "get_message")

        # The user writes; an agent claims the conversation, shows it is typing, and skips it.
        await s.ok("send_message", {"conversationId": cid, "author": {"type": "user", "userExternalId": ext},
                                    "content": {"type": "text", "text": "a question"}})
        claimed = await s.ok("claim_conversation", {"conversationId": cid, "waitSeconds": 10})
        check(claimed["claim"] is not None, f"claim_conversation: {claimed}")
        check(claimed["unanswered"][-1]["content"]["text"] == "a question", f"unanswered: {claimed}")
        typing = await s.ok("send_activity", {"conversationId": cid, "type": "typing:start"})
        check(typing["type"] == "typing:start", "send_activity")
        released = await s.ok("release_conversation", {"claim": claimed["claim"]["token"], "outcome": "skipped"})
        check(released["outcome"] == "skipped", "release_conversation")

        # A form to a Messenger user fails delivery; the webhook reports it.
        conv3 = (await s.ok("list_conversations", {"userExternalId": "demo-user-08"}))["conversations"][0]["id"]
        form = {"type": "form", "fields": [{"type": "text", "name": "n", "label": "Name"}]}
        fmid = (await s.ok("send_message", {"conversationId": conv3, "content": form}))["messages"][0]["id"]
        for _ in range(200):
            status = await s.ok("get_delivery_status", {"messageId": fmid})
            if status["state"] == "failed":
                break
            await asyncio.sleep(0.025)
        check(status["state"] == "failed", f"delivery failure not reported: {status}")
        failures = await s.ok("list_delivery_failures", {"conversationId": conv3})
        check(failures["failures"][0]["messageId"] == fmid, "list_delivery_failures")

        boards = await s.ok("list_switchboards", {})
        check(boards["switchboards"][0]["enabled"], "list_switchboards")
        st = await s.ok("get_switchboard_status", {"conversationId": cid})
        check(st["switchboardEnabled"], "get_switchboard_status")
        text = await s.err("pass_control", {"conversationId": cid, "switchboardIntegration": "nobody"})
        check("validTargets" in text, f"invalid target lists the valid ones: {text}")
        await s.ok("offer_control", {"conversationId": cid, "switchboardIntegration": "zd-agentWorkspace"})
        acc = await s.ok("accept_control", {"conversationId": cid})
        check(acc["status"]["active"]["name"] == "zd-agentWorkspace", "accept_control")
        await s.ok("release_control", {"conversationId": cid})
        passed = await s.ok("pass_control", {"conversationId": cid, "switchboardIntegration": "zd-agentWorkspace"})
        check(passed["status"]["active"]["name"] == "zd-agentWorkspace", "pass_control")

        ints = await s.ok("list_integrations", {"limit": 2})
        check(ints["hasMore"] and ints["nextCursor"], "list_integrations pages")
        more = await s.ok("list_integrations", {"limit": 2, "cursor": ints["nextCursor"]})
        iid = more["integrations"][0]["id"]
        check((await s.ok("get_integration", {"integrationId": iid}))["integration"]["id"] == iid, "get_integration")

        missing = EXPECTED_TOOLS - s.called
        check(not missing, f"not called: {sorted(missing)}")
        print(f"ok: all {len(EXPECTED_TOOLS)} tools called through the Python SDK")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
