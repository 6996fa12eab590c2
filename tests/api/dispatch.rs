//! The dispatcher and auth actors through the tools, against the simulator's faults, with the
//! simulator's own counts as the witness of what reached the upstream.

use std::time::Duration;

use serde_json::json;

use zendesk_messaging_mcp::actors::{Actors, SupervisorSettings};
use zendesk_messaging_mcp::server::{self, HttpOptions};
use zendesk_messaging_mcp::simulator::faults::RateLimit;

use crate::mcp_support::TestServer;

const POST_MESSAGE: &str = "POST /v2/apps/{appId}/conversations/{conversationId}/messages";
const LIST_MESSAGES: &str = "GET /v2/apps/{appId}/conversations/{conversationId}/messages";

/// Quick retries, at most 4 attempts: fault tests take milliseconds.
fn quick() -> SupervisorSettings {
    let mut s = crate::support::quick();
    s.limits.max_attempts = 4;
    s
}

#[tokio::test]
async fn throttled_calls_wait_retry_and_send_each_message_once() {
    let t = TestServer::start_with(quick(), |c| {
        c.faults.rate_limit = Some(RateLimit {
            rps: 40.0,
            burst: 4,
        });
    })
    .await;
    let conv = t.conversation_of("demo-user-04").await;
    let sends = (0..16).map(|i| {
        let t = &t;
        let conv = conv.clone();
        async move {
            t.call(
                "send_message",
                json!({"conversationId": conv, "content": {"type": "text", "text": format!("n{i}")}}),
            )
            .await
        }
    });
    let results = futures::future::join_all(sends).await;
    let ok = results.iter().filter(|r| r.is_error != Some(true)).count();
    assert_eq!(ok, 16, "every throttled send eventually went through");
    assert!(
        t.sim.count(POST_MESSAGE, "rateLimited").await > 0,
        "the upstream did push back"
    );
    assert_eq!(
        t.sim.count(POST_MESSAGE, "201").await,
        16,
        "each message stored exactly once"
    );
    let stats = t.server.actors.dispatcher.stats().await.expect("stats");
    assert!(stats.throttled > 0);
    assert!(
        stats.rate < 100.0,
        "the dispatcher slowed down: {}",
        stats.rate
    );
}

#[tokio::test]
async fn reads_retry_through_5xx_but_an_ambiguous_send_is_never_repeated() {
    // The send guard off: with every request failing it would refuse the send before the
    // dispatcher is tried (control_unknown), and the dispatcher is what this test is about.
    let mut access = zendesk_messaging_mcp::access::AccessPolicy::default();
    access.no_send_guard = true;
    let http = HttpOptions {
        webhook_check: None,
        access: std::sync::Arc::new(access),
        ..Default::default()
    };
    let t = TestServer::start_full(quick(), http, None, |_| {}).await;
    let conv = t.conversation_of("demo-user-02").await;

    // Every request fails before it is handled: reads retry up to the cap, then say so.
    t.sim
        .admin("PUT", "/_sim/faults", Some(json!({"failRate": 1.0})))
        .await;
    let e = t
        .err("list_messages", json!({"conversationId": conv}))
        .await;
    assert_eq!(e["error"], "unreachable", "{e}");
    assert_eq!(t.sim.count(LIST_MESSAGES, "failed").await, 4, "4 attempts");

    // The send that got a 5xx may or may not have been stored: it is reported, not repeated.
    let e = t
        .err(
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": "once"}}),
        )
        .await;
    assert_eq!(e["error"], "outcome_unknown", "{e}");
    assert_eq!(
        t.sim.count(POST_MESSAGE, "failed").await,
        1,
        "sent once only"
    );

    // Stored, then answered 503: still one write upstream.
    t.sim
        .admin(
            "PUT",
            "/_sim/faults",
            Some(json!({"acceptThenFailRate": 1.0})),
        )
        .await;
    let e = t
        .err(
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": "stored"}}),
        )
        .await;
    assert_eq!(e["error"], "outcome_unknown");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("check before repeating")
    );
    assert_eq!(t.sim.count(POST_MESSAGE, "acceptedThenFailed").await, 1);
}

#[tokio::test]
async fn a_read_that_meets_5xx_succeeds_once_the_upstream_recovers() {
    let mut settings = quick();
    settings.limits.max_attempts = 100;
    settings.limits.initial_backoff = Duration::from_millis(20);
    let t = TestServer::start_with(settings, |_| {}).await;
    let conv = t.conversation_of("demo-user-02").await;
    // A read that meets failures and then a healthy upstream succeeds without the caller
    // seeing the failures.
    t.sim
        .admin("PUT", "/_sim/faults", Some(json!({"failRate": 1.0})))
        .await;
    let read = t.call("get_conversation", json!({"conversationId": conv}));
    let heal = async {
        let route = "GET /v2/apps/{appId}/conversations/{conversationId}";
        while t.sim.count(route, "failed").await < 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        t.sim.admin("PUT", "/_sim/faults", Some(json!({}))).await;
    };
    let (r, ()) = tokio::join!(read, heal);
    let got = crate::mcp_support::structured("get_conversation", &r);
    assert_eq!(got["conversation"]["id"], conv.as_str());
}

#[tokio::test]
async fn a_call_that_cannot_finish_in_time_fails_with_its_deadline() {
    let mut settings = quick();
    settings.limits.deadline = Duration::from_millis(300);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = crate::support::TestSim::start({
        let mut c = zendesk_messaging_mcp::simulator::SimConfig::local(
            zendesk_messaging_mcp::simulator::seed::Seed::Demo,
        );
        c.faults.latency_ms = 2_000;
        c
    })
    .await;
    let mut config = server::simulator_config(&sim.base).expect("config");
    config.timeout = Duration::from_millis(300);
    let running = server::serve(listener, &config, settings)
        .await
        .expect("serve");
    let client = TestServer::connect(&running, Default::default()).await;
    let started = std::time::Instant::now();
    let r = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("list_switchboards")
                .with_arguments(serde_json::Map::new()),
        )
        .await
        .expect("call");
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "no call outlives its deadline"
    );
    let e = crate::mcp_support::tool_error("list_switchboards", &r);
    assert_eq!(e["error"], "deadline_exceeded", "{e}");
    assert!(e["retryAfterSeconds"].as_u64().is_some());
}

#[tokio::test]
async fn a_refused_key_is_reread_from_its_file_and_the_call_tried_once_more() {
    let sim = crate::support::TestSim::demo().await;
    let dir = std::env::temp_dir().join(format!("zmcp-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("secret");
    std::fs::write(&file, "not-the-secret\n").expect("write");
    let mut config = server::simulator_config(&sim.base).expect("config");
    config.key_secret_file = Some(file.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = server::serve(listener, &config, quick())
        .await
        .expect("serve");
    let client = TestServer::connect(&running, Default::default()).await;
    let call = || async {
        client
            .call_tool(
                rmcp::model::CallToolRequestParams::new("get_user").with_arguments(
                    json!({"userId": "demo-user-01"})
                        .as_object()
                        .cloned()
                        .expect("obj"),
                ),
            )
            .await
            .expect("call")
    };
    let r = call().await;
    let e = crate::mcp_support::tool_error("get_user", &r);
    assert_eq!(e["error"], "unauthorized", "{e}");
    assert_eq!(
        sim.count("GET /v2/apps/{appId}/users/{userIdOrExternalId}", "401")
            .await,
        2,
        "one fresh token, one more try, then the error"
    );
    // The operator rotates the key into the file: the next call recovers without a restart.
    std::fs::write(&file, "sim-app-secret\n").expect("rotate");
    let r = call().await;
    let user = crate::mcp_support::structured("get_user", &r);
    assert_eq!(user["user"]["externalId"], "demo-user-01");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(start_paused = true)]
async fn jwts_are_refreshed_before_they_expire() {
    let mut config = server::simulator_config("http://127.0.0.1:9").expect("config");
    config.jwt_lifetime = Duration::from_secs(100);
    let actors = Actors::start(&config, SupervisorSettings::default())
        .await
        .expect("actors");
    let until = || tokio::time::Instant::now() + Duration::from_secs(5);
    assert_eq!(actors.auth.minted(until()).await.expect("minted"), 1);
    let first = actors.auth.credential(until()).await.expect("credential");
    // Refreshed at 80% of the lifetime: not yet at 79 s, done by 81 s.
    tokio::time::sleep(Duration::from_secs(79)).await;
    assert_eq!(actors.auth.minted(until()).await.expect("minted"), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(actors.auth.minted(until()).await.expect("minted"), 2);
    let second = actors.auth.credential(until()).await.expect("credential");
    // (The token text may be equal here: the wall clock its `exp` is based on is not paused.)
    assert!(second.generation > first.generation);
    actors.shutdown().await;
}
