//! The fleet's work loop through MCP clients over HTTP: claims, the quiet period, long polls,
//! fencing, superseded sends and releases, in one process and across replicas on Redis.

use std::time::Duration;

use rmcp::RoleClient;
use rmcp::service::RunningService;
use serde_json::{Value, json};
use zendesk_messaging_mcp::actors::SupervisorSettings;

use crate::mcp_support::{Recorder, TestServer, call_tool, structured, tool_error};
use crate::support::TestSim;

const POST_MESSAGE: &str = "POST /v2/apps/{appId}/conversations/{conversationId}/messages";
const AGENT_A: &str = "claims-agent-a-token-0123456789";
const AGENT_B: &str = "claims-agent-b-token-0123456789";

type Client = RunningService<RoleClient, Recorder>;

/// Two agents' tokens: neither names a switchboard integration, so both speak for the
/// switchboard's default one (the bot).
fn agents() -> zendesk_messaging_mcp::access::AccessPolicy {
    crate::mcp_support::access_from_tokens_file(&format!(
        r#"
[[tokens]]
name = "agent-a"
token = "{AGENT_A}"

[[tokens]]
name = "agent-b"
token = "{AGENT_B}"
"#
    ))
}

/// A server with the two agents; the test client is agent A. Returns agent B's client too.
async fn start() -> (TestServer, Client) {
    let http = zendesk_messaging_mcp::server::HttpOptions {
        access: std::sync::Arc::new(agents()),
        webhook_check: None,
        ..Default::default()
    };
    let t =
        TestServer::start_full(SupervisorSettings::default(), http, Some(AGENT_A), |_| {}).await;
    let b = TestServer::connect_as(&t.server, Recorder::default(), Some(AGENT_B)).await;
    (t, b)
}

/// The customer `user` writes `text` into `conv` (the simulator tells the server by webhook).
pub(crate) async fn customer_writes(sim: &TestSim, conv: &str, user: &str, text: &str) -> String {
    let r = sim
        .post(
            &TestSim::app(&format!("/conversations/{conv}/messages")),
            json!({"author": {"type": "user", "userExternalId": user},
                "content": {"type": "text", "text": text}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["messages"][0]["id"].as_str().expect("id").to_owned()
}

/// Until the server has the message from its webhook (so the queue has it too).
pub(crate) async fn heard(client: &Client, conv: &str, message_id: &str) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = ok(
            client,
            "get_message",
            json!({"conversationId": conv, "messageId": message_id, "maxPages": 1}),
        )
        .await;
        if found["foundBy"] == "seen" {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the webhook never came: {found}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ok(client: &Client, tool: &str, args: Value) -> Value {
    structured(tool, &call_tool(client, tool, args, None).await)
}

async fn err(client: &Client, tool: &str, args: Value) -> Value {
    tool_error(tool, &call_tool(client, tool, args, None).await)
}

fn texts(messages: &Value) -> Vec<&str> {
    messages
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|m| m["content"]["text"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn one_agent_answers_a_burst_as_a_whole_and_never_over_a_newer_message() {
    let (t, b) = start().await;
    let conv = t.conversation_of("demo-user-01").await;
    // Agent A waits for work; the customer writes two messages in a burst meanwhile.
    let waiting = ok(
        &t.client,
        "claim_conversation",
        json!({"waitSeconds": 20, "quietSeconds": 1}),
    );
    let burst = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        customer_writes(&t.sim, &conv, "demo-user-01", "my order").await;
        customer_writes(&t.sim, &conv, "demo-user-01", "is late").await;
    };
    let (claimed, ()) = tokio::join!(waiting, burst);
    let token = claimed["claim"]["token"]
        .as_str()
        .expect("a claim")
        .to_owned();
    assert_eq!(claimed["claim"]["conversationId"], conv.as_str());
    assert_eq!(
        texts(&claimed["unanswered"]),
        ["my order", "is late"],
        "the burst is handed out whole, oldest first: {claimed}"
    );
    // Written through the API, so the channel is the API's.
    assert_eq!(claimed["conversation"]["channel"], "api:conversations");
    assert!(claimed["waitingSince"].is_string());

    // Nobody else gets it: not from the queue, not by name, not with A's token.
    let none = ok(&b, "claim_conversation", json!({})).await;
    assert_eq!(none["claim"], Value::Null);
    assert_eq!(none["reason"], "nothing_ready", "{none}");
    let held = ok(&b, "claim_conversation", json!({"conversationId": conv})).await;
    assert_eq!(held["reason"], "held", "{held}");
    assert!(held["heldUntil"].is_string(), "{held}");
    let foreign = err(
        &b,
        "send_message",
        json!({"conversationId": conv, "claim": token,
            "content": {"type": "text", "text": "from B"}}),
    )
    .await;
    assert_eq!(foreign["error"], "invalid_argument");
    assert_eq!(foreign["field"], "claim", "{foreign}");

    // A message arrives while A thinks: A's answer is superseded, with it.
    let third = customer_writes(&t.sim, &conv, "demo-user-01", "and the address changed").await;
    heard(&t.client, &conv, &third).await;
    let late = err(
        &t.client,
        "send_message",
        json!({"conversationId": conv, "claim": token,
            "content": {"type": "text", "text": "sorry about the delay"}}),
    )
    .await;
    assert_eq!(late["error"], "superseded", "{late}");
    assert_eq!(
        texts(&late["arrived"]),
        ["and the address changed"],
        "the new message comes with the refusal: {late}"
    );
    assert_eq!(
        t.sim.count(POST_MESSAGE, "201").await,
        3,
        "only the customer's"
    );
    // Answering the whole goes through, once, and completes the claim.
    let sent = ok(
        &t.client,
        "send_message",
        json!({"conversationId": conv, "claim": token,
            "content": {"type": "text", "text": "sorry: new address noted, order on its way"}}),
    )
    .await;
    assert!(sent["messages"][0]["id"].is_string());
    let spent = err(
        &t.client,
        "release_conversation",
        json!({"claim": token, "outcome": "answered"}),
    )
    .await;
    assert_eq!(spent["error"], "claim_lost");
    assert_eq!(spent["reason"], "answered", "{spent}");
    let after = ok(&b, "claim_conversation", json!({"conversationId": conv})).await;
    assert_eq!(after["reason"], "not_waiting", "answered: {after}");
}

#[tokio::test]
async fn bad_claim_arguments_name_the_field_and_send_nothing() {
    let (t, _b) = start().await;
    let conv = t.conversation_of("demo-user-01").await;
    for (args, field) in [
        (json!({"waitSeconds": 51}), "waitSeconds"),
        (json!({"quietSeconds": 31}), "quietSeconds"),
        (json!({"leaseSeconds": 4}), "leaseSeconds"),
        (json!({"leaseSeconds": 601}), "leaseSeconds"),
        (json!({"claim": "not-a-token"}), "claim"),
        (json!({"conversationId": "nope"}), "conversationId"),
        (
            json!({"claim": format!("clm.{conv}.1.{}", "0".repeat(32))}),
            "claim",
        ),
        (
            json!({"activeSwitchboardIntegration": "no-such-integration"}),
            "activeSwitchboardIntegration",
        ),
    ] {
        let e = err(&t.client, "claim_conversation", args.clone()).await;
        assert_eq!(e["error"], "invalid_argument", "{args}: {e}");
        assert_eq!(e["field"], field, "{args}: {e}");
    }
    let text = json!({"type": "text", "text": "x"});
    for (args, field) in [
        (json!({"claim": "clm.x"}), "claim"),
        (json!({"keepClaim": true}), "keepClaim"),
        (json!({"inReplyTo": "nope"}), "inReplyTo"),
        (
            json!({"claim": format!("clm.{conv}.1.{}", "0".repeat(32)), "inReplyTo": conv}),
            "inReplyTo",
        ),
        (
            json!({"claim": format!("clm.{}.1.{}", "a".repeat(24), "0".repeat(32))}),
            "claim",
        ),
    ] {
        let mut a = args.clone();
        a["conversationId"] = json!(conv);
        a["content"] = text.clone();
        let e = err(&t.client, "send_message", a).await;
        assert_eq!(e["field"], field, "{args}: {e}");
    }
    for args in [
        json!({"claim": "clm.x", "outcome": "answered"}),
        json!({"claim": format!("clm.{conv}.1.{}", "0".repeat(32)), "outcome": "maybe"}),
    ] {
        let e = err(&t.client, "release_conversation", args.clone()).await;
        assert_eq!(e["error"], "invalid_argument", "{args}: {e}");
    }
    assert_eq!(
        t.sim.count(POST_MESSAGE, "201").await,
        0,
        "nothing was sent"
    );
}

#[tokio::test]
async fn in_reply_to_refuses_an_answer_that_ignores_a_newer_message() {
    let (t, _b) = start().await;
    let conv = t.conversation_of("demo-user-04").await;
    let first = customer_writes(&t.sim, &conv, "demo-user-04", "hello?").await;
    let reply = json!({"conversationId": conv, "inReplyTo": first,
        "content": {"type": "text", "text": "hi, how can I help?"}});
    customer_writes(&t.sim, &conv, "demo-user-04", "I need a refund").await;
    let _ = &t.client;
    let e = err(&t.client, "send_message", reply.clone()).await;
    assert_eq!(e["error"], "superseded", "{e}");
    assert_eq!(texts(&e["arrived"]), ["I need a refund"]);
    let newest = e["arrived"][0]["id"].as_str().expect("id").to_owned();
    let mut answer = reply;
    answer["inReplyTo"] = json!(newest);
    ok(&t.client, "send_message", answer).await;
}

#[tokio::test]
async fn a_human_taking_over_drops_the_claim_and_skipped_work_comes_back() {
    let (t, b) = start().await;
    let conv = t.conversation_of("demo-user-07").await;
    customer_writes(&t.sim, &conv, "demo-user-07", "can I talk to a person").await;
    let claimed = ok(
        &t.client,
        "claim_conversation",
        json!({"waitSeconds": 10, "quietSeconds": 0}),
    )
    .await;
    let token = claimed["claim"]["token"]
        .as_str()
        .expect("claim")
        .to_owned();
    // Skipped: back in the queue, and another agent gets it.
    let released = ok(
        &t.client,
        "release_conversation",
        json!({"claim": token, "outcome": "skipped"}),
    )
    .await;
    assert_eq!(released["outcome"], "skipped");
    let again = ok(
        &b,
        "claim_conversation",
        json!({"waitSeconds": 5, "quietSeconds": 0}),
    )
    .await;
    assert_eq!(again["claim"]["conversationId"], conv.as_str(), "{again}");
    let token_b = again["claim"]["token"].as_str().expect("claim").to_owned();
    // The agent workspace takes the conversation: B's claim is gone, nothing is sent.
    ok(
        &t.client,
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "zd:agentWorkspace"}),
    )
    .await;
    let lost = err(
        &b,
        "send_message",
        json!({"conversationId": conv, "claim": token_b,
            "content": {"type": "text", "text": "still here"}}),
    )
    .await;
    assert_eq!(
        lost["error"], "not_in_control",
        "the guard refuses first: {lost}"
    );
    let mut dropped = false;
    for _ in 0..500 {
        let r = call_tool(&b, "claim_conversation", json!({"claim": token_b}), None).await;
        if r.is_error == Some(true) {
            let e = tool_error("claim_conversation", &r);
            assert_eq!(e["error"], "claim_lost", "{e}");
            assert_eq!(e["reason"], "handed_over", "{e}");
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped, "the switchboard event drops the claim");
    let e = err(&b, "claim_conversation", json!({"conversationId": conv})).await;
    assert_eq!(e["error"], "not_in_control", "{e}");
}
