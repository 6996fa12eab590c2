"""An automation agent's shift with the official Python MCP SDK, against a running
`zendesk-messaging-mcp serve --simulator --tokens-file F` whose file gives the bot's token
(`switchboard_integration = "bot"`) and a rehearsal token (the same, `mode = "dry-run"`):

1. a customer writes; the agent finds the conversations waiting for a reply that the bot
   controls (list_conversations without a user, from the webhooks);
2. it hands one over with the handoff_to_agent prompt's steps and a summary;
3. its next business message there is refused (not_in_control), nothing sent;
4. the same scenario under the rehearsal token answers dryRun with the requests, and the
   conversation shows nothing was sent and nobody took over.

Usage: python agent_scenario.py http://127.0.0.1:PORT/mcp BOT_TOKEN REHEARSAL_TOKEN
Exits non-zero on the first failed check.
"""

import asyncio
import json
import sys
import time

import mcp
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def connect(url, token):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return mcp.Client(streamable_http_client(url, http_client=http))


async def call(client, tool, args):
    r = await client.call_tool(tool, args)
    text = "".join(getattr(c, "text", "") for c in r.content)
    return r.is_error, json.loads(text)


async def ok(client, tool, args):
    failed, body = await call(client, tool, args)
    check(not failed, f"{tool} failed: {body}")
    return body


async def waiting_for_the_bot(client, conversation_id):
    """Polls (the webhooks are asynchronous) until the index shows the conversation waiting."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        listed = await ok(client, "list_conversations",
                          {"awaitingReply": True, "activeSwitchboardIntegration": "bot"})
        check(listed["source"] == "index", f"source: {listed['source']}")
        check(listed["tracking"]["status"] != "off", "webhooks are off")
        if any(c["id"] == conversation_id for c in listed["conversations"]):
            return listed
        await asyncio.sleep(0.2)
    raise AssertionError(f"conversation {conversation_id} never showed as waiting")


async def customer_writes(client, ext):
    await ok(client, "create_user", {"externalId": ext})
    conv = (await ok(client, "create_conversation", {"participants": [{"userExternalId": ext}]}))["conversation"]
    await ok(client, "send_message", {
        "conversationId": conv["id"],
        "author": {"type": "user", "userExternalId": ext},
        "content": {"type": "text", "text": "My parcel never came. Can a person help?"},
    })
    return conv["id"]


async def hand_over(client, cid):
    """The handoff_to_agent prompt's steps; returns the pass_control answer and the refused send."""
    prompt = await client.get_prompt("handoff_to_agent", {"conversationId": cid,
                                                          "switchboardIntegration": "zd-agentWorkspace"})
    steps = prompt.messages[0].content.text
    check("pass_control" in steps and cid in steps, f"the prompt's steps: {steps}")
    status = await ok(client, "get_switchboard_status", {"conversationId": cid})
    check(status["active"]["name"] == "bot", f"the bot controls it: {status}")
    history = await ok(client, "list_messages", {"conversationId": cid, "limit": 10})
    asked = history["messages"][-1]["content"]["text"]
    summary = f"Customer reports a missing parcel: {asked!r}. Needs a person to trace it."
    told = await ok(client, "send_message", {
        "conversationId": cid, "idempotencyKey": f"handover-{cid}",
        "content": {"type": "text", "text": "A colleague will take over in a moment."}})
    passed = await ok(client, "pass_control", {
        "conversationId": cid, "switchboardIntegration": "zd-agentWorkspace", "summary": summary})
    failed, refused = await call(client, "send_message", {
        "conversationId": cid, "content": {"type": "text", "text": "Anything else?"}})
    return told, passed, failed, refused


async def main(url, bot_token, rehearsal_token):
    stamp = int(time.time() * 1000)
    async with connect(url, bot_token) as bot:
        prompts = {p.name for p in (await bot.list_prompts()).prompts}
        check({"handoff_to_agent", "triage_failures"} <= prompts, f"prompts: {prompts}")
        resources = {r.uri for r in (await bot.list_resources()).resources}
        check("sunco://switchboard" in resources, f"resources: {resources}")

        # Live: find the work, hand over, and the next business send is refused.
        cid = await customer_writes(bot, f"py-agent-{stamp}")
        await waiting_for_the_bot(bot, cid)
        told, passed, failed, refused = await hand_over(bot, cid)
        check(told["replayed"] is False, "the customer was told")
        check(passed["status"]["active"]["name"] == "zd-agentWorkspace", f"handed over: {passed}")
        check(failed and refused["error"] == "not_in_control", f"refused: {refused}")
        check(refused["activeSwitchboardIntegration"]["name"] == "zd-agentWorkspace", f"names who: {refused}")
        print("live: found the waiting conversation, handed it over with a summary, next send refused")

        # Rehearsal: the same scenario under the dry-run token sends nothing.
        rid = await customer_writes(bot, f"py-rehearsal-{stamp}")
        await waiting_for_the_bot(bot, rid)
        before = await ok(bot, "list_messages", {"conversationId": rid})
    async with connect(url, rehearsal_token) as rehearsal:
        await waiting_for_the_bot(rehearsal, rid)
        told, passed, failed, second = await hand_over(rehearsal, rid)
        for what, answer in (("the notice", told), ("the hand-over", passed), ("the next send", second)):
            check(answer.get("dryRun") is True, f"{what} was a dry run: {answer}")
        check(not failed, f"the bot kept control, so the next send is a dry run too: {second}")
        check(passed["request"]["operation"] == "PassControl", f"request: {passed}")
        check("missing parcel" in passed["request"]["body"]["metadata"]["mcp.summary"], "summary carried")
    async with connect(url, bot_token) as bot:
        after = await ok(bot, "list_messages", {"conversationId": rid})
        check(after["messages"] == before["messages"], "nothing was sent in the rehearsal")
        status = await ok(bot, "get_switchboard_status", {"conversationId": rid})
        check(status["active"]["name"] == "bot", f"nobody took over in the rehearsal: {status}")
    print("dry run: the same scenario answered the requests it would send; nothing was sent")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
