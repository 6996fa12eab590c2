//! The promises an operator relies on, each against the simulator's faults and checked on the
//! simulator's own record of what it received and stored.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use zendesk_messaging_mcp::actors::SupervisorSettings;

use crate::mcp_support::TestServer;
use crate::support::TestSim;

const POST_MESSAGE: &str = "POST /v2/apps/{appId}/conversations/{conversationId}/messages";

fn quick() -> SupervisorSettings {
    let mut s = SupervisorSettings::default();
    s.limits.initial_backoff = Duration::from_millis(5);
    s.limits.max_backoff = Duration::from_millis(40);
    s
}

/// Every message of a conversation as the simulator stores it (all pages).
async fn stored(t: &TestServer, conversation: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let q = before
            .as_ref()
            .map(|b| format!("?page[before]={b}"))
            .unwrap_or_default();
        let r = t
            .sim
            .get(&TestSim::app(&format!(
                "/conversations/{conversation}/messages{q}"
            )))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let page = r.body["messages"].as_array().cloned().unwrap_or_default();
        let more = r.body["meta"]["hasMore"] == true;
        before = page
            .first()
            .and_then(|m| m["id"].as_str())
            .map(str::to_owned);
        all.splice(0..0, page);
        if !more {
            return all;
        }
    }
}

/// How many stored messages carry each text.
fn texts(messages: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in messages {
        if let Some(t) = m["content"]["text"].as_str() {
            *counts.entry(t.to_owned()).or_default() += 1;
        }
    }
    counts
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_result_without_a_second_write() {
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-04").await;
    let args = json!({"conversationId": conv, "content": {"type": "text", "text": "once only"},
        "idempotencyKey": "order-42-confirmation"});
    let first = t.ok("send_message", args.clone()).await;
    assert_eq!(first["replayed"], false);
    let again = t.ok("send_message", args.clone()).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["messages"], first["messages"]);
    // Concurrent repeats wait for one another.
    let (a, b) = tokio::join!(
        t.ok("send_message", args.clone()),
        t.ok("send_message", args)
    );
    assert_eq!(a["messages"], first["messages"]);
    assert_eq!(b["messages"], first["messages"]);
    assert_eq!(
        t.sim.count(POST_MESSAGE, "201").await,
        1,
        "one write upstream"
    );
    assert_eq!(texts(&stored(&t, &conv).await)["once only"], 1);
    let bad = t
        .err(
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": "x"}, "idempotencyKey": ""}),
        )
        .await;
    assert_eq!(bad["field"], "idempotencyKey");
}

#[tokio::test]
async fn accept_then_fail_on_30_percent_of_sends_never_duplicates_a_keyed_message() {
    let t = TestServer::start_with(quick(), |_| {}).await;
    let conv = t.conversation_of("demo-user-05").await;
    t.sim
        .admin(
            "PUT",
            "/_sim/faults",
            Some(json!({"acceptThenFailRate": 0.3})),
        )
        .await;
    let n = 60;
    // With a key: every message exists upstream exactly once.
    let mut ok = 0;
    for i in 0..n {
        let r = t
            .call(
                "send_message",
                json!({"conversationId": conv, "content": {"type": "text", "text": format!("keyed {i}")},
                    "idempotencyKey": format!("k-{i}")}),
            )
            .await;
        if r.is_error != Some(true) {
            ok += 1;
        } else {
            // A key whose every attempt failed ambiguously says so; calling again resolves it.
            let e = crate::mcp_support::tool_error("send_message", &r);
            assert_eq!(e["error"], "outcome_unknown", "{e}");
        }
    }
    let stored_now = texts(&stored(&t, &conv).await);
    for i in 0..n {
        let count = stored_now.get(&format!("keyed {i}")).copied().unwrap_or(0);
        assert!(count <= 1, "keyed {i} stored {count} times");
    }
    assert!(
        ok >= n - 2,
        "nearly every keyed send resolves in one call ({ok}/{n})"
    );
    assert!(
        t.sim.count(POST_MESSAGE, "acceptedThenFailed").await > 0,
        "the fault did strike"
    );

    // Without a key: every ambiguous failure is reported as such, and nothing is repeated.
    let before = t.sim.count(POST_MESSAGE, "acceptedThenFailed").await;
    let mut unknown = 0;
    for i in 0..n {
        let r = t
            .call(
                "send_message",
                json!({"conversationId": conv, "content": {"type": "text", "text": format!("plain {i}")}}),
            )
            .await;
        if r.is_error == Some(true) {
            let e = crate::mcp_support::tool_error("send_message", &r);
            assert_eq!(e["error"], "outcome_unknown", "{e}");
            unknown += 1;
        }
    }
    let ambiguous = t.sim.count(POST_MESSAGE, "acceptedThenFailed").await - before;
    assert_eq!(
        unknown, ambiguous as usize,
        "each ambiguous failure was reported, none retried"
    );
    let stored_now = texts(&stored(&t, &conv).await);
    for i in 0..n {
        assert_eq!(stored_now.get(&format!("plain {i}")), Some(&1), "plain {i}");
    }
}
