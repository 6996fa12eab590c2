//! A tool call is a value that travels down: its cancellation reaches the long work it started,
//! and its dry run reaches the writes it starts in other tasks.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use zendesk_messaging_mcp::access::CallerRules;
use zendesk_messaging_mcp::actors::{Actors, SupervisorSettings};
use zendesk_messaging_mcp::call::{Call, Caller};
use zendesk_messaging_mcp::error::ErrorClass;
use zendesk_messaging_mcp::operations::Operations;
use zendesk_messaging_mcp::operations::claims::Answering::Unsaid;
use zendesk_messaging_mcp::server;
use zendesk_messaging_mcp::sunco::wire::{Author, Content, MessagePost};

use crate::mcp_support::TestServer;
use crate::support::TestSim;

const LIST_MESSAGES: &str = "GET /v2/apps/{appId}/conversations/{conversationId}/messages";
const POST_MESSAGE: &str = "POST /v2/apps/{appId}/conversations/{conversationId}/messages";

#[tokio::test]
async fn a_call_waiting_for_the_upstream_tells_its_progress() {
    // The API takes one request every 2 s and says so with Retry-After: the second call waits.
    let t = TestServer::start_with(SupervisorSettings::default(), |c| {
        c.faults.rate_limit =
            Some(zendesk_messaging_mcp::simulator::faults::RateLimit { rps: 0.5, burst: 1 });
        c.faults.retry_after = true;
    })
    .await;
    t.ok("list_integrations", json!({})).await;
    let r = t
        .call_with("list_integrations", json!({}), Some("budget"))
        .await;
    crate::mcp_support::structured("list_integrations", &r);
    let progress = t.recorder.progress.lock().expect("progress").clone();
    assert!(
        progress.iter().any(|p| p
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("waiting for Sunshine Conversations"))),
        "progress while the call waited: {progress:?}"
    );
    // Per token (the client gives each request its own), the progress increases.
    for p in &progress {
        let same: Vec<f64> = (progress.iter())
            .filter(|q| q.progress_token == p.progress_token)
            .map(|q| q.progress)
            .collect();
        assert!(
            same.windows(2).all(|w| w[0] < w[1]),
            "progress increases: {progress:?}"
        );
    }
}

#[tokio::test]
async fn a_cancelled_get_message_scan_makes_no_further_upstream_request() {
    // Every upstream request takes a second, so the scan of demo-user-01's 250 messages (three
    // pages) is still running when the client cancels it after the first page.
    let t = TestServer::start_with(SupervisorSettings::default(), |c| {
        c.faults.latency_ms = 1000
    })
    .await;
    let conv = t.conversation_of("demo-user-01").await;
    let before = t.sim.count(LIST_MESSAGES, "200").await;
    let handle = crate::mcp_support::start_cancellable_call(
        &t.client,
        "get_message",
        json!({
            "conversationId": conv,
            // An id no message has: only a cancel ends the scan before its last page.
            "messageId": "0123456789abcdef01234567",
            "maxPages": 50,
        }),
        Some("scan"),
    )
    .await;
    // (The calls before it may have told of their waits for the slow upstream.)
    crate::support::eventually("the first page is scanned", || async {
        let progress = t.recorder.progress.lock().expect("progress");
        progress.iter().any(|p| {
            p.message
                .as_deref()
                .is_some_and(|m| m.starts_with("scanned"))
        })
    })
    .await;
    handle
        .cancel(Some("the user moved on".into()))
        .await
        .expect("cancel");
    // The page in flight when the cancel came may finish; none starts after it.
    let at_cancel = t.sim.count(LIST_MESSAGES, "200").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let after = t.sim.count(LIST_MESSAGES, "200").await;
    assert!(
        after - before <= 2,
        "pages read: {} (the first, and at most the one in flight at the cancel)",
        after - before
    );
    assert!(
        after <= at_cancel + 1,
        "after the cancel at most the request in flight completed ({at_cancel} -> {after})"
    );
    let metrics = crate::telemetry::metrics_text(&t).await;
    assert!(
        metrics.lines().any(|l| l.contains("tool=\"get_message\"")
            && l.contains("outcome=\"cancelled\"")
            && l.starts_with("mcp_tool_calls")),
        "the call is counted as cancelled:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("get_message"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn a_write_started_from_a_spawned_task_during_a_dry_run_is_not_sent() {
    let sim = TestSim::demo().await;
    let config = server::simulator_config(&sim.base).expect("config");
    let actors = Arc::new(
        Actors::start(&config, SupervisorSettings::default())
            .await
            .expect("actors"),
    );
    let ops = Arc::new(Operations::new(actors.clone()));
    let conversation = sim.conversation_of("demo-user-01").await;
    let dry = Call::new(
        Caller::default(),
        CallerRules {
            dry_run: true,
            ..CallerRules::default()
        },
        CancellationToken::new(),
        tracing::Span::none(),
    );
    let body = MessagePost {
        author: Author::business(),
        content: serde_json::from_value::<Content>(json!({"type": "text", "text": "hi"}))
            .expect("content"),
        destination: None,
        metadata: None,
        schema: None,
        r#override: None,
    };
    // The write runs in a task of its own, with the call moved into it.
    let spawned = {
        let (ops, call, conversation, body) =
            (ops.clone(), dry.clone(), conversation.clone(), body.clone());
        tokio::spawn(async move {
            ops.send_message(
                &call,
                &conversation,
                body,
                Some("spawned-1"),
                false,
                &Unsaid,
            )
            .await
        })
    };
    let e = spawned
        .await
        .expect("the task ran")
        .expect_err("a dry run answers with the request");
    assert_eq!(e.class(), ErrorClass::DryRun, "{e}");
    assert_eq!(
        e.to_json()["request"]["method"],
        "POST",
        "the request it would have sent: {}",
        e.to_json()
    );
    assert_eq!(
        sim.count(POST_MESSAGE, "201").await,
        0,
        "nothing reached the upstream"
    );
    // The same write from a live call's task is sent: the call, not the task, decides.
    let live = Call::internal();
    let sent = {
        let (ops, conversation) = (ops.clone(), conversation.clone());
        tokio::spawn(async move {
            ops.send_message(
                &live,
                &conversation,
                body,
                Some("spawned-2"),
                false,
                &Unsaid,
            )
            .await
        })
    };
    let sent = sent.await.expect("the task ran").expect("sent");
    assert_eq!(sent.messages.len(), 1);
    assert_eq!(sim.count(POST_MESSAGE, "201").await, 1);
    actors.shutdown().await;
}
