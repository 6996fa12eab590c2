//! Each fault the simulator injects, set by configuration and at run time through the admin
//! route, and counted in its statistics.

use std::time::{Duration, Instant};

use serde_json::json;

use super::support::{Auth, TestSim};
use zendesk_messaging_mcp::simulator::SimConfig;
use zendesk_messaging_mcp::simulator::faults::{Faults, RateLimit};
use zendesk_messaging_mcp::simulator::seed::Seed;

const CONVERSATIONS: &str = "GET /v2/apps/{appId}/conversations";
const MESSAGES: &str = "POST /v2/apps/{appId}/conversations/{conversationId}/messages";

fn list() -> String {
    TestSim::app("/conversations?filter[userExternalId]=demo-user-01")
}

#[tokio::test]
async fn rate_limit_answers_429_with_and_without_retry_after() {
    let mut config = SimConfig::local(Seed::Demo);
    config.faults.rate_limit = Some(RateLimit { rps: 0.5, burst: 2 });
    let sim = TestSim::start(config).await;
    assert_eq!(sim.get(&list()).await.status, 200);
    assert_eq!(sim.get(&list()).await.status, 200);
    let r = sim.get(&list()).await;
    assert_eq!((r.status, r.code()), (429, "too_many_requests"));
    assert!(r.headers.get("retry-after").is_none());
    assert_eq!(sim.count(CONVERSATIONS, "rateLimited").await, 1);

    // At run time: the same limit, now with Retry-After in whole seconds.
    let faults = sim
        .admin(
            "PUT",
            "/_sim/faults",
            Some(json!({"rateLimit": {"rps": 0.5, "burst": 1}, "retryAfter": true})),
        )
        .await;
    assert_eq!(faults["retryAfter"], true);
    assert_eq!(sim.get(&list()).await.status, 200);
    let r = sim.get(&list()).await;
    assert_eq!(r.status, 429);
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    // Admin routes are never limited.
    sim.admin("GET", "/_sim/stats", None).await;
}

#[tokio::test]
async fn fail_rate_answers_500_or_503_before_handling() {
    let mut config = SimConfig::local(Seed::Demo);
    config.faults.fail_rate = 1.0;
    let sim = TestSim::start(config).await;
    let conv_path = TestSim::app("/conversations/5f748c1a2b5315fc007e7977/messages");
    for _ in 0..6 {
        let r = sim
            .post(
                &conv_path,
                json!({"author": {"type": "business"}, "content": {"type": "text", "text": "x"}}),
            )
            .await;
        assert!(r.status == 500 || r.status == 503, "{}", r.status);
    }
    assert_eq!(sim.count(MESSAGES, "failed").await, 6);
    sim.admin("PUT", "/_sim/faults", Some(json!({}))).await;
    assert_eq!(sim.get(&list()).await.status, 200);
}

#[tokio::test]
async fn accept_then_fail_stores_the_write_and_answers_503() {
    let sim = TestSim::demo().await;
    let conv = sim.conversation_of("demo-user-05").await;
    let path = TestSim::app(&format!("/conversations/{conv}/messages"));
    sim.admin(
        "PUT",
        "/_sim/faults",
        Some(json!({"acceptThenFailRate": 1.0})),
    )
    .await;
    let r = sim.post(&path, json!({"author": {"type": "business"}, "content": {"type": "text", "text": "did this arrive?"}})).await;
    assert_eq!(r.status, 503);
    // Reads are untouched, and show the write went through.
    let msgs = sim.get(&path).await.body["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(msgs.last().unwrap()["content"]["text"], "did this arrive?");
    assert_eq!(sim.count(MESSAGES, "acceptedThenFailed").await, 1);
}

#[tokio::test]
async fn dropped_connections_get_no_answer() {
    let sim = TestSim::demo().await;
    sim.admin("PUT", "/_sim/faults", Some(json!({"dropRate": 1.0})))
        .await;
    let r = sim
        .try_send(Auth::AppBasic, "GET", &list(), None, "application/json")
        .await;
    assert!(
        r.is_err(),
        "expected a dropped connection, got {:?}",
        r.map(|r| r.status)
    );
    assert_eq!(sim.count(CONVERSATIONS, "dropped").await, 1);
}

#[tokio::test]
async fn latency_is_added_to_api_requests() {
    let sim = TestSim::demo().await;
    sim.admin("PUT", "/_sim/faults", Some(json!({"latencyMs": 300})))
        .await;
    let started = Instant::now();
    assert_eq!(sim.get(&list()).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn fault_settings_are_checked() {
    let sim = TestSim::demo().await;
    let client = reqwest::Client::new();
    for body in [
        json!({"failRate": 2}),
        json!({"rateLimit": {"rps": 0, "burst": 1}}),
        json!({"typo": 1}),
    ] {
        let r = client
            .put(format!("{}/_sim/faults", sim.base))
            .bearer_auth("sim-admin-token")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    let r = client
        .get(format!("{}/_sim/stats", sim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "admin routes need the admin token");
    assert_eq!(
        serde_json::from_value::<Faults>(json!({})).unwrap(),
        Faults::default()
    );
}
