//! Supervision, admission, the switchboard cache's load sharing and the delivery tracker's
//! deduplication, through the server's public routes.

use std::time::Duration;

use serde_json::json;

use zendesk_messaging_mcp::actors::{ActorKind, SupervisorSettings};

use crate::mcp_support::TestServer;

#[tokio::test]
async fn a_restart_storm_stops_the_server_instead_of_looping() {
    let settings = SupervisorSettings {
        max_restarts: 2,
        restart_window: Duration::from_secs(60),
        ..Default::default()
    };
    let t = TestServer::start_with(settings, |_| {}).await;
    for n in 1..=2 {
        t.server.actors.kill(ActorKind::Tracker);
        // Wait for the restart before the next blow.
        crate::support::eventually("the tracker restarted", || async {
            t.server.actors.restarts().await.expect("restarts") == n
        })
        .await;
    }
    assert!(
        t.server.actors.is_running(),
        "two restarts are within the limit"
    );
    t.server.actors.kill(ActorKind::Tracker);
    tokio::time::timeout(Duration::from_secs(5), t.server.stopped())
        .await
        .expect("the supervisor stops on the third restart in the window");
    assert!(!t.server.actors.is_running());
    let health = reqwest::get(format!("http://{}/healthz", t.server.addr))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 503);
}

#[tokio::test]
async fn past_the_queue_bound_calls_fail_fast_with_busy() {
    let mut settings = SupervisorSettings::default();
    settings.limits.max_in_flight = 1;
    settings.limits.queue_capacity = 2;
    let t = TestServer::start_with(settings, |c| c.faults.latency_ms = 150).await;
    let conv = t.conversation_of("demo-user-05").await;
    let calls = (0..8).map(|_| {
        let t = &t;
        let conv = conv.clone();
        async move {
            t.call("get_conversation", json!({"conversationId": conv}))
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let busy: Vec<_> = results
        .iter()
        .filter(|r| r.is_error == Some(true))
        .map(|r| crate::mcp_support::tool_error("get_conversation", r))
        .collect();
    assert!(!busy.is_empty(), "some calls were refused");
    for e in &busy {
        assert_eq!(e["error"], "busy", "{e}");
        assert!(e["retryAfterSeconds"].as_u64().is_some_and(|s| s >= 1));
    }
    // One in flight and two queued at most (a start-up switchboard load may hold the slot).
    assert!(
        results.len() - busy.len() >= 2,
        "what was queued went through"
    );
    let served = t
        .sim
        .count("GET /v2/apps/{appId}/conversations/{conversationId}", "200")
        .await;
    assert_eq!(
        served as usize,
        results.len() - busy.len(),
        "refused calls never went upstream"
    );
}

#[tokio::test]
async fn concurrent_cache_misses_share_one_load() {
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-02").await;
    t.server.actors.switchboard.invalidate().await;
    let before = t
        .sim
        .count("GET /v2/apps/{appId}/switchboards", "200")
        .await;
    let calls = (0..6).map(|_| {
        let t = &t;
        let conv = conv.clone();
        async move {
            t.ok("get_switchboard_status", json!({"conversationId": conv}))
                .await
        }
    });
    futures::future::join_all(calls).await;
    let after = t
        .sim
        .count("GET /v2/apps/{appId}/switchboards", "200")
        .await;
    assert_eq!(
        after - before,
        1,
        "six concurrent misses, one upstream load"
    );
}

#[tokio::test]
async fn the_tracker_counts_a_redelivered_event_once() {
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-01").await;
    let message_id = "6b0701e125d86a003526d8ff";
    let envelope = json!({
        "app": {"id": "5f0c1e2d3b4a596877889900"},
        "webhook": {"id": "6b0701e125d86a003526d800", "version": "v2"},
        "events": [{
            "id": "6b0701e125d86a003526d8fe",
            "type": "conversation:message:delivery:failure",
            "createdAt": "2026-11-25T10:00:00.000Z",
            "payload": {
                "user": {"id": "6b0701e125d86a003526d8fd", "authenticated": false},
                "conversation": {"id": conv, "type": "personal"},
                "message": {"id": message_id},
                "destination": {"type": "whatsapp", "integrationId": "6b0701e125d86a003526d8fc"},
                "isFinalEvent": true,
                "error": {"code": "uncategorized_error", "message": "cannot render"}
            }
        }]
    });
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let r = http
            .post(t.server.webhook_url())
            .header("X-API-Key", "sim-webhook-secret")
            .json(&envelope)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200);
    }
    let status = t.delivery_state(message_id, "failed").await;
    assert_eq!(
        status["events"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
    assert_eq!(status["failure"]["error"]["code"], "uncategorized_error");
    let failures = t
        .ok("list_delivery_failures", json!({"conversationId": conv}))
        .await;
    assert_eq!(failures["failures"].as_array().map(Vec::len), Some(1));
}
