//! Several replicas sharing one real `redis-server` (started by each test on a Unix socket),
//! against one simulator: one budget, one idempotency record, one delivery record, one
//! switchboard picture and sessions that move between replicas.

use rmcp::RoleClient;
use rmcp::model::CallToolResult;
use rmcp::service::RunningService;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use zendesk_messaging_mcp::actors::SupervisorSettings;
use zendesk_messaging_mcp::config::Config;
use zendesk_messaging_mcp::server::{self, HttpOptions, RunningServer, WEBHOOK_PATH};
use zendesk_messaging_mcp::shared::redis_store::RedisOptions;
use zendesk_messaging_mcp::shared::redis_store::test_server::RedisServer;
use zendesk_messaging_mcp::simulator::SimConfig;

use crate::mcp_support::{Recorder, TestServer, call_tool, post_json, structured, tool_error};
use crate::support::{TestSim, eventually, quick, with_webhooks};

/// One replica: a server and an MCP client connected to it.
pub struct Replica {
    pub server: RunningServer,
    pub client: RunningService<RoleClient, Recorder>,
}

impl Replica {
    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        call_tool(&self.client, tool, args, None).await
    }

    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        structured(tool, &self.call(tool, args).await)
    }

    pub async fn err(&self, tool: &str, args: Value) -> Value {
        tool_error(tool, &self.call(tool, args).await)
    }
}

/// N replicas on one Redis and one simulator, whose webhooks go to the first replica.
pub struct Fleet {
    pub sim: TestSim,
    pub redis: RedisServer,
    pub replicas: Vec<Replica>,
}

impl Fleet {
    /// `None` (the test skips) when `redis-server` is not installed outside CI.
    pub async fn start(
        n: usize,
        settings: impl Fn() -> SupervisorSettings,
        tweak: impl FnOnce(&mut SimConfig),
    ) -> Option<Self> {
        Self::start_with(n, settings, tweak, HttpOptions::default, None).await
    }

    /// [`Fleet::start`], each replica with these HTTP options (access rules, say), the test
    /// clients presenting `token`.
    pub async fn start_with(
        n: usize,
        settings: impl Fn() -> SupervisorSettings,
        tweak: impl FnOnce(&mut SimConfig),
        http: impl Fn() -> HttpOptions,
        token: Option<&str>,
    ) -> Option<Self> {
        let redis = RedisServer::start()?;
        let mut listeners = vec![];
        for _ in 0..n {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        let first = listeners[0].local_addr().expect("addr");
        let mut sim_config = with_webhooks(&format!("http://{first}{WEBHOOK_PATH}"));
        tweak(&mut sim_config);
        let sim = TestSim::start(sim_config).await;
        let config = server::simulator_config(&sim.base).expect("config");
        let mut replicas = vec![];
        for listener in listeners {
            let http = HttpOptions {
                webhook_check: None,
                ..http()
            };
            replicas.push(replica_as(listener, &config, settings(), http, &redis, token).await);
        }
        Some(Self {
            sim,
            redis,
            replicas,
        })
    }
}

/// Starts one replica on `listener`, sharing its state in `redis`, without the periodic webhook
/// check (its upstream calls would blur the counts).
pub(crate) async fn replica(
    listener: TcpListener,
    config: &Config,
    settings: SupervisorSettings,
    redis: &RedisServer,
) -> Replica {
    let http = HttpOptions {
        webhook_check: None,
        ..Default::default()
    };
    replica_with(listener, config, settings, http, redis).await
}

/// [`replica`] with these HTTP options (access rules, say).
async fn replica_with(
    listener: TcpListener,
    config: &Config,
    settings: SupervisorSettings,
    http: HttpOptions,
    redis: &RedisServer,
) -> Replica {
    replica_as(listener, config, settings, http, redis, None).await
}

/// [`replica_with`], its test client presenting `token`.
async fn replica_as(
    listener: TcpListener,
    config: &Config,
    mut settings: SupervisorSettings,
    http: HttpOptions,
    redis: &RedisServer,
    token: Option<&str>,
) -> Replica {
    settings.redis = Some(RedisOptions::new(redis.url()));
    let server = server::serve_with(listener, config, settings, http)
        .await
        .expect("serve");
    let client = TestServer::connect_as(&server, Recorder::default(), token).await;
    Replica { server, client }
}

const GET_CONVERSATION: &str = "GET /v2/apps/{appId}/conversations/{conversationId}";
const POST_MESSAGE: &str = "POST /v2/apps/{appId}/conversations/{conversationId}/messages";

/// The most requests the simulator received in any one-second window.
async fn busiest_second(sim: &TestSim) -> usize {
    let log = sim.admin("GET", "/_sim/requests", None).await;
    let mut at: Vec<i128> = log["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["at"].as_str())
        .filter_map(zendesk_messaging_mcp::sunco::ids::parse_timestamp)
        .map(|t| t.unix_timestamp_nanos())
        .collect();
    at.sort_unstable();
    (0..at.len())
        .map(|i| at[i..].partition_point(|t| *t < at[i] + 1_000_000_000))
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_under_load_keep_one_budget_with_no_429() {
    let (rate, burst) = (20.0, 4);
    let settings = || {
        let mut s = quick();
        s.limits.rate = rate;
        s.limits.burst = burst;
        s
    };
    let Some(fleet) = Fleet::start(3, settings, |c| {
        c.faults.rate_limit =
            Some(zendesk_messaging_mcp::simulator::faults::RateLimit { rps: rate, burst });
    })
    .await
    else {
        return;
    };
    // Through a replica: a request straight to the simulator would spend its limit unseen.
    let found = fleet.replicas[0]
        .ok(
            "list_conversations",
            json!({"userExternalId": "demo-user-01"}),
        )
        .await;
    let conv = found["conversations"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Three replicas, 24 calls each, all at once: 72 upstream requests at 20/s, ~3.5 s.
    let calls = fleet.replicas.iter().flat_map(|r| {
        let conv = conv.clone();
        (0..24).map(move |_| {
            let conv = conv.clone();
            async move {
                r.call("get_conversation", json!({"conversationId": conv}))
                    .await
            }
        })
    });
    let results = futures::future::join_all(calls).await;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.is_error == Some(true))
        .map(crate::mcp_support::text_of)
        .collect();
    assert!(failed.is_empty(), "every call is answered: {failed:?}");
    assert_eq!(
        fleet.sim.count(GET_CONVERSATION, "rateLimited").await,
        0,
        "the fleet together never exceeds the budget: no 429"
    );
    assert_eq!(fleet.sim.count(GET_CONVERSATION, "200").await, 72);
    let busiest = busiest_second(&fleet.sim).await;
    assert!(
        busiest <= (rate as usize) + burst as usize,
        "at most rate + burst upstream requests in any second: {busiest}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_on_three_replicas_at_once_stores_one_message() {
    let Some(fleet) = Fleet::start(3, quick, |_| {}).await else {
        return;
    };
    let conv = fleet.sim.conversation_of("demo-user-02").await;
    let args = json!({"conversationId": conv, "idempotencyKey": "fleet-key-1",
        "content": {"type": "text", "text": "once, whichever replica"}});
    let sends = fleet
        .replicas
        .iter()
        .map(|r| r.ok("send_message", args.clone()));
    let results = futures::future::join_all(sends).await;
    let ids: Vec<&Value> = results.iter().map(|r| &r["messages"][0]["id"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one message: {ids:?}");
    assert_eq!(
        results.iter().filter(|r| r["replayed"] == false).count(),
        1,
        "one replica sent it, the others answered from the record: {results:?}"
    );
    assert_eq!(fleet.sim.count(POST_MESSAGE, "201").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_received_by_one_replica_is_seen_from_every_other() {
    let Some(fleet) = Fleet::start(3, quick, |_| {}).await else {
        return;
    };
    let [_a, b, c] = &fleet.replicas[..] else {
        unreachable!()
    };
    // demo-user-08's channel renders no forms: the upstream reports a failure, to replica A.
    let conv = fleet.sim.conversation_of("demo-user-08").await;
    let sent = b
        .ok(
            "send_message",
            json!({"conversationId": conv, "content": {"type": "form", "fields": [
                {"type": "email", "name": "email", "label": "Your email"}]}}),
        )
        .await;
    let mid = sent["messages"][0]["id"].as_str().expect("id").to_owned();
    for (name, r) in [("B", b), ("C", c)] {
        eventually(
            &format!("replica {name} sees the failure A received"),
            || async {
                let status = r.ok("get_delivery_status", json!({"messageId": mid})).await;
                status["state"] == "failed"
            },
        )
        .await;
        let failures = r
            .ok("list_delivery_failures", json!({"conversationId": conv}))
            .await;
        assert_eq!(
            failures["failures"][0]["messageId"],
            mid.as_str(),
            "{name}: {failures}"
        );
    }
    // Seen by B when it sent it: C finds it too.
    let found = c
        .ok(
            "get_message",
            json!({"conversationId": conv, "messageId": mid}),
        )
        .await;
    assert_eq!(found["message"]["id"], mid.as_str());
    // A conversation B creates is announced to A (conversation:create): C's index knows it.
    let created = b
        .ok(
            "create_conversation",
            json!({"participants": [{"userExternalId": "demo-user-08"}]}),
        )
        .await;
    let new = created["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    eventually("C's index knows the conversation A heard of", || async {
        let known = c.server.actors.tracker.conversation(&new).await;
        known.expect("the index answers").is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_one_replica_hears_of_stops_the_bot_on_another_from_the_shared_index() {
    let Some(fleet) = Fleet::start(1, quick, |_| {}).await else {
        return;
    };
    // Replica B speaks for the bot; the webhooks reach replica A only.
    let mut access = zendesk_messaging_mcp::access::AccessPolicy::default();
    access.switchboard_integration = Some("bot".into());
    // B checks the upstream's webhook: found sending every control event, the shared index
    // is current for it.
    let http = HttpOptions {
        access: std::sync::Arc::new(access),
        ..Default::default()
    };
    let config = server::simulator_config(&fleet.sim.base).expect("config");
    let b = replica_with(
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        &config,
        quick(),
        http,
        &fleet.redis,
    )
    .await;
    let a = &fleet.replicas[0];
    eventually("B's webhook check finds every trigger", || async {
        b.server.actors.tracker.tracking().await.webhook.status
            == zendesk_messaging_mcp::actors::delivery::WebhookCheckStatus::Configured
    })
    .await;
    let created = a
        .ok(
            "create_conversation",
            json!({"participants": [{"userExternalId": "demo-user-01"}]}),
        )
        .await;
    let conv = created["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    eventually(
        "A's webhook told the shared index who controls it",
        || async {
            let known = b.server.actors.tracker.conversation(&conv).await;
            known
                .expect("the index answers")
                .is_some_and(|e| e.active_switchboard_integration.is_some())
        },
    )
    .await;
    b.ok(
        "send_message",
        json!({"conversationId": conv, "content": {"type": "text", "text": "Bot here."}}),
    )
    .await;
    // An agent takes over through the API itself: only the webhook to A tells of it.
    let passed = fleet
        .sim
        .post(
            &TestSim::app(&format!("/conversations/{conv}/passControl")),
            json!({"switchboardIntegration": "zd-agentWorkspace"}),
        )
        .await;
    assert_eq!(passed.status, 200, "{:?}", passed.body);
    let reads = fleet.sim.count(GET_CONVERSATION, "200").await;
    eventually("B refuses to answer over the agent", || async {
        let r = b
            .call(
                "send_message",
                json!({"conversationId": conv, "content": {"type": "text", "text": "Still me."}}),
            )
            .await;
        r.is_error == Some(true)
    })
    .await;
    let e = b
        .err(
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": "Still me."}}),
        )
        .await;
    assert_eq!(e["error"], "not_in_control", "{e}");
    assert_eq!(
        e["activeSwitchboardIntegration"]["name"],
        "zd-agentWorkspace"
    );
    assert_eq!(
        fleet.sim.count(GET_CONVERSATION, "200").await,
        reads,
        "B read who controls it from the shared index, not the API"
    );
    // B lists from the same index, filtered: the conversation the agent now holds.
    let listed = b
        .ok(
            "list_conversations",
            json!({"activeSwitchboardIntegration": "zd:agentWorkspace", "awaitingReply": false}),
        )
        .await;
    assert!(
        listed["conversations"]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["id"] == conv.as_str())),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchboard_change_one_replica_learns_reaches_every_cache() {
    let Some(fleet) = Fleet::start(3, quick, |_| {}).await else {
        return;
    };
    let [a, b, c] = &fleet.replicas[..] else {
        unreachable!()
    };
    let conv = fleet.sim.conversation_of("demo-user-04").await;
    for r in [a, b, c] {
        r.ok("get_switchboard_status", json!({"conversationId": conv}))
            .await;
    }
    const LOAD: &str = "GET /v2/apps/{appId}/switchboards";
    let loads = fleet.sim.count(LOAD, "200").await;
    // Cached everywhere: no more loads.
    b.ok("get_switchboard_status", json!({"conversationId": conv}))
        .await;
    assert_eq!(fleet.sim.count(LOAD, "200").await, loads);
    // The agent workspace integration goes away upstream; A still has it cached and is refused.
    let boards = a.ok("list_switchboards", json!({})).await;
    let board = boards["switchboards"][0]["id"].as_str().expect("id");
    let gone = boards["switchboards"][0]["switchboardIntegrations"]
        .as_array()
        .expect("integrations")
        .iter()
        .find(|i| i["name"] == "zd-agentWorkspace")
        .expect("agent workspace")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deleted = fleet
        .sim
        .delete(&TestSim::app(&format!(
            "/switchboards/{board}/switchboardIntegrations/{gone}"
        )))
        .await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    let refused = a
        .err(
            "pass_control",
            json!({"conversationId": conv, "switchboardIntegration": "zd-agentWorkspace"}),
        )
        .await;
    assert!(refused["error"].is_string(), "{refused}");
    // B and C dropped their pictures on A's notice: their next look loads afresh.
    for r in [b, c] {
        let before = fleet.sim.count(LOAD, "200").await;
        eventually("the other replicas load the switchboard afresh", || async {
            r.ok("get_switchboard_status", json!({"conversationId": conv}))
                .await;
            fleet.sim.count(LOAD, "200").await > before
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_started_on_one_replica_continues_on_another() {
    let Some(fleet) = Fleet::start(2, quick, |_| {}).await else {
        return;
    };
    let [a, b] = &fleet.replicas[..] else {
        unreachable!()
    };
    let accept = Some("application/json, text/event-stream");
    let session = crate::mcp_support::open_session(&a.server.mcp_url(), &[]).await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    // The same session on replica B, which has never seen it.
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}).to_string();
    let listed = post_json(&b.server.mcp_url(), accept, &headers, call).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(
        listed.body.contains("send_message"),
        "B answers within A's session: {}",
        listed.body
    );
}

/// A session belongs to whoever opened it on every replica (the owner is kept with it in
/// Redis), and a `DELETE` on one replica ends it on all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_its_openers_on_every_replica_and_a_delete_ends_it_everywhere() {
    const ALICE: &str = "replica-alice-token-0123456789";
    const BOB: &str = "replica-bob-token-0123456789";
    let tokens = format!(
        "[[tokens]]\nname = \"alice\"\ntoken = \"{ALICE}\"\n\n[[tokens]]\nname = \"bob\"\ntoken = \"{BOB}\"\n"
    );
    let access = std::sync::Arc::new(crate::mcp_support::access_from_tokens_file(&tokens));
    let http = || HttpOptions {
        access: access.clone(),
        ..Default::default()
    };
    let Some(fleet) = Fleet::start_with(2, quick, |_| {}, http, Some(ALICE)).await else {
        return;
    };
    let [a, b] = &fleet.replicas[..] else {
        unreachable!()
    };
    let accept = Some("application/json, text/event-stream");
    let (alice, bob) = (format!("Bearer {ALICE}"), format!("Bearer {BOB}"));
    let session =
        crate::mcp_support::open_session(&a.server.mcp_url(), &[("authorization", alice.as_str())])
            .await;
    let in_session = |bearer: &str| {
        [
            ("authorization", bearer.to_owned()),
            ("mcp-session-id", session.clone()),
            ("mcp-protocol-version", "2025-11-25".to_owned()),
        ]
    };
    let ask = |url: String, bearer: &str, body: Value| {
        let headers = in_session(bearer);
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_json(&url, accept, &headers, body.to_string()).await
        }
    };
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    // Bob holds the id but not the session, on the replica that never saw it first...
    let stolen = ask(b.server.mcp_url(), &bob, list.clone()).await;
    assert_eq!(stolen.status, 403, "{}", stolen.body);
    assert!(stolen.body.contains("another caller"), "{}", stolen.body);
    // ...and Alice is not refused there afterwards.
    let listed = ask(b.server.mcp_url(), &alice, list.clone()).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("send_message"), "{}", listed.body);

    // Alice ends the session on A: it is gone on B too (which had restored it).
    let mut delete = reqwest::Client::new().delete(a.server.mcp_url());
    for (k, v) in in_session(&alice) {
        delete = delete.header(k, v);
    }
    let ended = delete.send().await.expect("delete");
    // 200, as the official SDKs expect (the Python SDK warns "Session termination failed" on 202).
    assert_eq!(ended.status(), 200);
    for (replica, name) in [(b, "B"), (a, "A")] {
        let after = ask(replica.server.mcp_url(), &alice, list.clone()).await;
        assert_eq!(after.status, 404, "{name}: {}", after.body);
        assert!(after.body.contains("initialize"), "{name}: {}", after.body);
    }
}

/// A keyed `send_message` over the stateless protocol, as a caller would send it: the tool's
/// structured result, or why there was none (an error result, or no answer at all).
async fn keyed_send(url: &str, conv: &str, key: &str) -> Result<Value, String> {
    let body = crate::mcp_support::stateless_request(
        "tools/call",
        json!({"name": "send_message", "arguments": {"conversationId": conv,
            "idempotencyKey": key, "content": {"type": "text", "text": format!("for {key}")}}}),
    );
    let call =
        crate::mcp_support::try_post_stateless(url, "tools/call", Some("send_message"), &[], body);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(30), call)
        .await
        .map_err(|_| "no answer within 30 s".to_owned())??;
    let text = answer.body;
    let v: Value = serde_json::from_str(&text).map_err(|_| format!("not JSON: {text}"))?;
    let result = &v["result"];
    if result["isError"] == false {
        Ok(result["structuredContent"].clone())
    } else {
        Err(text)
    }
}

/// Repeats `key` on the replicas at `urls` in turn until one answers with the sent message;
/// returns it and how many calls were refused or unanswered first.
async fn until_sent(urls: &[String], conv: &str, key: &str) -> (Value, usize) {
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut turn = 0;
    loop {
        match keyed_send(&urls[turn % urls.len()], conv, key).await {
            Ok(v) => return (v, turn),
            Err(why) => {
                assert!(
                    tokio::time::Instant::now() < give_up,
                    "{key} never went through: {why}"
                );
                turn += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

/// How many messages of the conversation carry each idempotency key.
async fn stored_per_key(sim: &TestSim, conv: &str) -> std::collections::BTreeMap<String, usize> {
    let page = sim
        .get(&TestSim::app(&format!("/conversations/{conv}/messages")))
        .await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let mut per_key = std::collections::BTreeMap::new();
    for m in page.body["messages"].as_array().expect("messages") {
        if let Some(k) = m["metadata"]["mcp.idempotencyKey"].as_str() {
            *per_key.entry(k.to_owned()).or_insert(0) += 1;
        }
    }
    per_key
}

/// `serve` on a free loopback port sharing `redis`, with `sim` as its upstream (the demo key),
/// exporting no metrics.
fn serve_command(sim: &TestSim, redis: &RedisServer) -> std::process::Command {
    use zendesk_messaging_mcp::simulator::seed;
    let mut cmd = crate::cli::bin();
    cmd.args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--redis-url",
        &redis.url(),
    ])
    .env("SUNCO_APP_ID", seed::DEFAULT_APP_ID)
    .env("SUNCO_KEY_ID", seed::DEFAULT_KEY_ID)
    .env("SUNCO_KEY_SECRET", seed::DEFAULT_KEY_SECRET)
    .env("SUNCO_API_URL", &sim.base)
    .env("OTEL_METRICS_EXPORTER", "none");
    cmd
}

/// A `serve` process on a free port sharing `redis`, with `sim` as its upstream.
fn serve_process(sim: &TestSim, redis: &RedisServer) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = serve_command(sim, redis)
        // A dead owner's hold on a key lapses 5 s after one upstream attempt's deadline.
        .env("SUNCO_TIMEOUT_SECS", "2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let banner = crate::cli::read_until(&mut lines, "upstream:");
    let url = crate::cli::banner_field(&banner, "MCP endpoint:");
    // Keep reading stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_send_leaves_every_key_with_exactly_one_message() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let sim = TestSim::demo().await;
    let conv = sim.conversation_of("demo-user-05").await;
    let mut processes: Vec<(std::process::Child, String)> =
        (0..3).map(|_| serve_process(&sim, &redis)).collect();
    let urls: Vec<String> = processes.iter().map(|(_, u)| u.clone()).collect();
    // Every upstream request takes 300 ms: the sends are in flight when replica 0 dies.
    sim.admin("PUT", "/_sim/faults", Some(json!({"latencyMs": 300})))
        .await;
    let keys: Vec<String> = (0..24).map(|i| format!("kill-{i}")).collect();
    let first_round = keys
        .iter()
        .enumerate()
        .map(|(i, k)| keyed_send(&urls[i % 3], &conv, k));
    let kill = async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        processes[0].0.kill().expect("SIGKILL replica 0");
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(first_round), kill);
    let unanswered: Vec<&String> = keys
        .iter()
        .zip(&answers)
        .filter(|(_, a)| a.is_err())
        .map(|(k, _)| k)
        .collect();
    assert!(
        !unanswered.is_empty(),
        "the killed replica left some keys unanswered"
    );
    // The callers repeat what went unanswered on the survivors.
    let survivors = &urls[1..];
    let repeats = unanswered.iter().map(|k| until_sent(survivors, &conv, k));
    futures::future::join_all(repeats).await;
    let per_key = stored_per_key(&sim, &conv).await;
    for k in &keys {
        assert_eq!(per_key.get(k), Some(&1), "{k}: {per_key:?}");
    }
    for (child, _) in &mut processes {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_load_loses_no_key_and_sends_none_twice() {
    let Some(mut redis) = RedisServer::start_persistent() else {
        return;
    };
    let sim = TestSim::demo().await;
    let conv = sim.conversation_of("demo-user-11").await;
    let mut replicas = vec![];
    let config = server::simulator_config(&sim.base).expect("config");
    // The send guard off: it reads Redis too (when the last webhook came), so guarded sends
    // would all wait out the restart there and the idempotency records would never meet it.
    let mut access = zendesk_messaging_mcp::access::AccessPolicy::default();
    access.no_send_guard = true;
    let access = std::sync::Arc::new(access);
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let http = HttpOptions {
            webhook_check: None,
            access: access.clone(),
            ..Default::default()
        };
        replicas.push(replica_with(listener, &config, quick(), http, &redis).await);
    }
    let urls: Vec<String> = replicas.iter().map(|r| r.server.mcp_url()).collect();
    sim.admin("PUT", "/_sim/faults", Some(json!({"latencyMs": 50})))
        .await;
    let keys: Vec<String> = (0..30).map(|i| format!("restart-{i}")).collect();
    let load = futures::future::join_all(keys.iter().enumerate().map(|(i, k)| {
        let urls = &urls;
        let conv = &conv;
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(20 * i as u64)).await;
            // Each caller repeats its key until it is answered, as the errors tell it to.
            let mine = [urls[i % 2].clone(), urls[(i + 1) % 2].clone()];
            until_sent(&mine, conv, k).await
        }
    }));
    let restart = async {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        // Down for 300 ms, then back with what its append-only file kept.
        redis.kill();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tokio::task::block_in_place(|| redis.restart());
    };
    let (sent, ()) = tokio::join!(load, restart);
    let refused: usize = sent.iter().map(|(_, refused)| refused).sum();
    eprintln!("calls refused while Redis restarted: {refused}");
    assert!(refused > 0, "some calls met the restart");
    let per_key = stored_per_key(&sim, &conv).await;
    for k in &keys {
        assert_eq!(per_key.get(k), Some(&1), "{k}: {per_key:?}");
    }
    // Recovered: a new key goes through at once.
    let after = keyed_send(&urls[0], &conv, "after-restart").await;
    assert!(after.is_ok(), "{after:?}");
    let ready: Value = reqwest::get(format!("http://{}/readyz", replicas[0].server.addr))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["sharedState"]["status"], "ok", "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_replica_serves_degraded_refuses_what_needs_it_and_recovers() {
    let Some(mut fleet) = Fleet::start(1, quick, |_| {}).await else {
        return;
    };
    let r = &fleet.replicas[0];
    let found = r
        .ok(
            "list_conversations",
            json!({"userExternalId": "demo-user-07"}),
        )
        .await;
    let conv = found["conversations"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let readyz = format!("http://{}/readyz", r.server.addr);
    let ready = || async {
        let answer = reqwest::get(&readyz).await.expect("readyz");
        let status = answer.status().as_u16();
        (status, answer.json::<Value>().await.expect("json"))
    };
    // A webhook event reaches the replica while Redis is up (a message's own event).
    r.ok(
        "send_message",
        json!({"conversationId": conv, "content": {"type": "text", "text": "before the outage"}}),
    )
    .await;
    eventually("an event arrives", || async {
        ready().await.1["tracking"]["status"] == "on"
    })
    .await;
    fleet.redis.kill();
    let keyed = json!({"conversationId": conv, "idempotencyKey": "down-1",
        "content": {"type": "text", "text": "needs the shared record"}});
    let refused = r.err("send_message", keyed.clone()).await;
    assert_eq!(refused["error"], "unavailable", "{refused}");
    assert!(
        refused["retryAfterSeconds"].as_u64() >= Some(1),
        "{refused}"
    );
    // A webhook cannot be recorded: 503, so the upstream retries it.
    let event = json!({"app": {"id": zendesk_messaging_mcp::simulator::seed::DEFAULT_APP_ID},
        "webhook": {"id": "5e552ef595e5206375bb835e", "version": "v2"},
        "events": [{"id": "6b0c4709888934003cae0001", "type": "conversation:message",
            "createdAt": "2026-11-29T12:00:00.000Z",
            "payload": {"conversation": {"id": conv}, "message": {
                "id": "6b0c4709888934003cae0002", "received": "2026-11-29T12:00:00.000Z",
                "author": {"type": "user"}, "content": {"type": "text", "text": "hi"}}}}]});
    let post_webhook = || async {
        reqwest::Client::new()
            .post(r.server.webhook_url())
            .header(
                "X-API-Key",
                zendesk_messaging_mcp::server::SIMULATOR_WEBHOOK_SECRET,
            )
            .json(&event)
            .send()
            .await
            .expect("webhook")
            .status()
            .as_u16()
    };
    assert_eq!(post_webhook().await, 503);
    // Reads still work, on this replica's share of the budget (get_message scans instead of
    // looking in the record); /readyz stays 200 and says why.
    r.ok("get_conversation", json!({"conversationId": conv}))
        .await;
    let page = r
        .ok("list_messages", json!({"conversationId": conv, "limit": 1}))
        .await;
    let newest = page["messages"][0]["id"].as_str().expect("a message");
    let found = r
        .ok(
            "get_message",
            json!({"conversationId": conv, "messageId": newest}),
        )
        .await;
    assert_eq!(found["message"]["id"], newest, "{found}");
    let (status, body) = ready().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["sharedState"]["status"], "degraded", "{body}");
    // Not "no event arrived": what this replica received itself, said as such.
    assert_eq!(body["tracking"]["status"], "on", "{body}");
    assert!(
        body["tracking"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot be read")),
        "{body}"
    );
    let metrics = crate::telemetry::metrics_at(&format!("http://{}", r.server.addr)).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("mcp_server_degraded{")
                && l.contains("reason=\"redis\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    // Redis returns: everything recovers.
    tokio::task::block_in_place(|| fleet.redis.restart());
    eventually("the replica finds Redis back", || async {
        ready().await.1["sharedState"]["status"] == "ok"
    })
    .await;
    r.ok("send_message", keyed).await;
    assert_eq!(post_webhook().await, 200, "the event is recorded now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_one_replica_reloads_is_what_an_idle_replica_exports() {
    let Some(fleet) = Fleet::start(2, SupervisorSettings::default, |_| {}).await else {
        return;
    };
    let (a, b) = (&fleet.replicas[0], &fleet.replicas[1]);
    let send_rate = || async {
        let metrics = crate::telemetry::metrics_at(&format!("http://{}", b.server.addr)).await;
        crate::telemetry::sample(&metrics, "sunco_dispatcher_send_rate_per_second", &[])
    };
    // A reloads rate_limit = "4:2" (what a changed settings file does); B sends nothing.
    assert_eq!(
        a.server
            .actors
            .budget
            .reshape(4.0, 2)
            .await
            .expect("reshape"),
        (4.0, 2)
    );
    eventually("the idle replica exports the fleet's new rate", || async {
        send_rate().await == Some(4.0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_warns_of_an_evicting_redis_and_of_a_budget_unlike_the_fleets() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let client = ::redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = ::redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut conn)
        .await
        .expect("config set");
    let sim = TestSim::demo().await;
    let start = |rate: &str| {
        serve_command(&sim, &redis)
            .args(["--rate-limit", rate])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn serve")
    };
    // The first replica sets the fleet's budget when it first asks for a permit (checking its
    // credentials at start).
    let mut first = start("20:4");
    let logged = tokio::task::block_in_place(|| {
        crate::cli::stderr_until(&mut first, &["maxmemory-policy", "the upstream accepted"])
    });
    assert!(logged.contains("allkeys-lru"), "{logged}");
    let mut second = start("50:10");
    let logged = tokio::task::block_in_place(|| {
        crate::cli::stderr_until(&mut second, &["but the fleet's budget in Redis is 20:4"])
    });
    assert!(
        logged.contains("give every replica the same rate_limit"),
        "{logged}"
    );
    for child in [&mut first, &mut second] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_replica_spends_its_share_of_the_budget() {
    let settings = || {
        let mut s = quick();
        s.limits.rate = 30.0;
        s.limits.burst = 6;
        s
    };
    let Some(mut fleet) = Fleet::start(3, settings, |_| {}).await else {
        return;
    };
    let r = &fleet.replicas[0];
    let readyz = format!("http://{}/readyz", r.server.addr);
    eventually("the heartbeats show three replicas", || async {
        let ready: Value = reqwest::get(&readyz)
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        ready["sharedState"]["replicas"] == 3
    })
    .await;
    fleet.redis.kill();
    let found = r
        .ok(
            "list_conversations",
            json!({"userExternalId": "demo-user-01"}),
        )
        .await;
    assert!(found["conversations"][0]["id"].is_string(), "{found}");
    let stats = r.server.actors.dispatcher.stats().await.expect("stats");
    assert!(
        (stats.rate - 10.0).abs() < 1e-9,
        "a third of the fleet's 30/s: {}",
        stats.rate
    );
}

/// One replica on the Redis at `url` and a simulator of its own whose webhooks go to it.
async fn replica_on(url: &str) -> (TestSim, Replica) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let at = listener.local_addr().expect("addr");
    let sim = TestSim::start(with_webhooks(&format!("http://{at}{WEBHOOK_PATH}"))).await;
    let config = server::simulator_config(&sim.base).expect("config");
    let mut settings = quick();
    settings.redis = Some(RedisOptions::new(url));
    let http = HttpOptions {
        webhook_check: None,
        ..Default::default()
    };
    let server = server::serve_with(listener, &config, settings, http)
        .await
        .expect("serve");
    let client = TestServer::connect(&server, Recorder::default()).await;
    (sim, Replica { server, client })
}

/// What `/readyz` says of the shared state: `ok` or `degraded`.
async fn shared_state(r: &Replica) -> String {
    let answer: Value = reqwest::get(format!("http://{}/readyz", r.server.addr))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    answer["sharedState"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A keyed send that needs the shared record, on the demo conversation of `user`.
async fn keyed_send_works(r: &Replica, user: &str, key: &str) -> bool {
    let found = r
        .ok("list_conversations", json!({"userExternalId": user}))
        .await;
    let conv = found["conversations"][0]["id"].as_str().expect("id");
    let sent = r
        .call(
            "send_message",
            json!({"conversationId": conv, "idempotencyKey": key,
                "content": {"type": "text", "text": "after the failover"}}),
        )
        .await;
    sent.is_error != Some(true)
}

/// A failover behind one address (managed Redis, a Sentinel-fronted name): the old primary
/// becomes a replica and answers `READONLY` while the address leads to the new primary. The
/// replica reports the refused writes (`/readyz` degraded, though reads still pass) and opens a
/// new connection, which reaches the new primary: shared state works again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_behind_one_address_writes_go_to_the_new_primary() {
    let Some(mut fleet) = Fleet::start(1, quick, |_| {}).await else {
        return;
    };
    let r = &fleet.replicas[0];
    assert_eq!(shared_state(r).await, "ok");
    fleet.redis.demote();
    eventually("the refused writes are reported", || async {
        shared_state(r).await == "degraded"
    })
    .await;
    assert!(!keyed_send_works(r, "demo-user-07", "failover-1").await);
    let _old = fleet.redis.fail_over();
    eventually("the replica writes to the new primary", || async {
        shared_state(r).await == "ok"
    })
    .await;
    assert!(keyed_send_works(r, "demo-user-07", "failover-2").await);
}

/// A connection that goes silent without a close (a dead node, a dropped NAT entry) is given up
/// after calls in a row time out: the new one reaches whatever answers at the address now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_gone_silent_is_replaced() {
    let Some(mut fleet) = Fleet::start(1, quick, |_| {}).await else {
        return;
    };
    let r = &fleet.replicas[0];
    assert_eq!(shared_state(r).await, "ok");
    fleet.redis.freeze(true);
    let old = fleet.redis.fail_over();
    eventually(
        "the replica reaches the server at the address now",
        || async {
            shared_state(r).await == "ok" && keyed_send_works(r, "demo-user-08", "silent-1").await
        },
    )
    .await;
    old.freeze(false);
}

/// Pointed at any node of a Redis Cluster with a plain `redis://` URL (as managed services hand
/// them out), here one that does not own the app's slot, the server finds out at start that it
/// is a Cluster and follows its slots: shared state works as on one Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_pointed_at_any_node_of_a_cluster_follows_its_slots() {
    let Some(cluster) =
        zendesk_messaging_mcp::shared::redis_store::test_server::RedisCluster::start()
    else {
        return;
    };
    let (sim, r) =
        replica_on(&cluster.url_not_owning(zendesk_messaging_mcp::simulator::seed::DEFAULT_APP_ID))
            .await;
    assert_eq!(shared_state(&r).await, "ok");
    assert!(keyed_send_works(&r, "demo-user-07", "cluster-1").await);
    // The key's record is in the Cluster: a repeat is answered from it, nothing sent again.
    let sent = sim.count(POST_MESSAGE, "201").await;
    let found = r
        .ok(
            "list_conversations",
            json!({"userExternalId": "demo-user-07"}),
        )
        .await;
    let conv = found["conversations"][0]["id"].as_str().expect("id");
    let again = r
        .ok(
            "send_message",
            json!({"conversationId": conv, "idempotencyKey": "cluster-1",
                "content": {"type": "text", "text": "after the failover"}}),
        )
        .await;
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(sim.count(POST_MESSAGE, "201").await, sent);
    assert_eq!(shared_state(&r).await, "ok");
}

/// Behind Sentinel (`redis+sentinel://SENTINEL/SERVICE`), the server asks the Sentinels for the
/// primary; when the primary dies and the Sentinel promotes its replica, the server asks again
/// and shared state works on the new primary without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_sentinel_follows_its_failover() {
    let Some(mut sentinel) =
        zendesk_messaging_mcp::shared::redis_store::test_server::RedisSentinel::start()
    else {
        return;
    };
    let (_sim, r) = replica_on(&sentinel.url()).await;
    assert_eq!(shared_state(&r).await, "ok");
    assert!(keyed_send_works(&r, "demo-user-07", "sentinel-1").await);
    sentinel.kill_primary();
    // The Sentinel needs a second to see the primary down and another to promote the replica.
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(shared_state(&r).await == "ok"
        && keyed_send_works(&r, "demo-user-07", "sentinel-2").await)
    {
        assert!(
            tokio::time::Instant::now() < until,
            "no write reached the new primary within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
