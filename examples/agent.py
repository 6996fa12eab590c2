"""A support agent's loop with the official Python MCP SDK: the job the README describes.

Against `zendesk-messaging-mcp serve --simulator` (or a real deployment), it

1. claims the conversation whose customer has waited longest (claim_conversation: one agent
   per customer, however many run);
2. reads the unanswered messages it was handed;
3. answers with the claim (send_message {claim}: refused as `superseded` if the customer wrote
   again meanwhile, so it reads again instead of answering an old question), or, when the
   customer asks for a person, hands the conversation to the agent workspace with a summary;
4. checks the answer's delivery (get_delivery_status);

until it has handled --conversations of them or no customer waits (it then says so and exits
0; an error from the server ends it with the server's message).

The replies here are fixed rules, so the example runs without a model; put your model where
`decide` is.

    python -m venv venv && venv/bin/pip install mcp==2.3.0
    venv/bin/python examples/agent.py http://127.0.0.1:8090/mcp [--token TOKEN] [--conversations 3]
"""

import argparse
import asyncio
import json

import mcp
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def call(client, tool, args):
    """A tool's answer as JSON; raises with the server's error (it names the field and the
    next step) when the tool failed."""
    r = await client.call_tool(tool, args)
    body = json.loads("".join(getattr(c, "text", "") for c in r.content))
    if r.is_error:
        raise RuntimeError(f"{tool}: {body.get('error')}: {body.get('message')}")
    return body


def decide(messages):
    """What to do with a customer's unanswered messages: ("handover", summary) or
    ("answer", text). Your model goes here."""
    said = " ".join(m["content"].get("text", "") for m in messages)
    if any(w in said.lower() for w in ("person", "human", "agent", "someone")):
        return "handover", f"The customer asks for a person. They wrote: {said[:300]}"
    return "answer", "Thanks for your message! Your order is on its way; anything else I can do?"


async def handle(client, claimed):
    conversation = claimed["claim"]["conversationId"]
    token = claimed["claim"]["token"]
    messages = claimed.get("unanswered", [])
    print(f"claimed {conversation}: {len(messages)} unanswered message(s), "
          f"the last: {messages[-1]['content'].get('text', '')!r}" if messages else
          f"claimed {conversation}")
    what, text = decide(messages)
    if what == "handover":
        await call(client, "send_message", {
            "conversationId": conversation, "claim": token, "keepClaim": True,
            "content": {"type": "text", "text": "A colleague will take over in a moment."}})
        passed = await call(client, "pass_control", {
            "conversationId": conversation, "switchboardIntegration": "next",
            "summary": text, "claim": token})
        print(f"  handed over to {passed['status']['active']['name']}")
        return
    try:
        sent = await call(client, "send_message", {
            "conversationId": conversation, "claim": token,
            "content": {"type": "text", "text": text}})
    except RuntimeError as e:
        # superseded: the customer wrote again; claim again to read what they added.
        print(f"  not sent: {e}")
        return
    message_id = sent["messages"][0]["id"]
    # Until the channel's final word: delivered to the user, or failed (with nextStep).
    for _ in range(40):
        status = await call(client, "get_delivery_status", {"messageId": message_id})
        if status["state"] not in ("noEventsYet", "sentToChannel"):
            break
        await asyncio.sleep(0.25)
    print(f"  answered ({message_id}): {status['state']}")


async def main(url, token, conversations):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = create_mcp_http_client(headers=headers)
    async with mcp.Client(streamable_http_client(url, http_client=http)) as client:
        handled = 0
        while handled < conversations:
            claimed = await call(client, "claim_conversation", {"waitSeconds": 5})
            if claimed.get("claim") is None:
                print(f"no customer waits ({claimed.get('reason')}); done")
                break
            await handle(client, claimed)
            handled += 1
        print(f"handled {handled} conversation(s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the server's MCP endpoint, e.g. http://127.0.0.1:8090/mcp")
    parser.add_argument("--token", help="a bearer token, when the server requires one")
    parser.add_argument("--conversations", type=int, default=3,
                        help="how many conversations to handle at most (default 3)")
    a = parser.parse_args()
    asyncio.run(main(a.url, a.token, a.conversations))
