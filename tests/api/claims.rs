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
        json!({"waitSeconds": 20, "quietSeconds": 2}),
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

    // The list of conversations shows it claimed.
    let listed = ok(&b, "list_conversations", json!({})).await;
    let entry = listed["conversations"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["id"] == conv.as_str()).cloned())
        .expect("listed");
    assert!(entry["claimedUntil"].is_string(), "{entry}");
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

/// The value of the first sample of `name` in `/metrics` of the server at `addr`.
async fn gauge(addr: std::net::SocketAddr, name: &str) -> f64 {
    let text = crate::telemetry::metrics_at(&format!("http://{addr}")).await;
    crate::telemetry::sample(&text, name, &[]).unwrap_or(0.0)
}

/// Until `name` reads `want` on the server at `addr` (10 s at most).
async fn gauge_reaches(addr: std::net::SocketAddr, name: &str, want: f64) {
    for _ in 0..500 {
        if gauge(addr, name).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} never read {want} (now {})", gauge(addr, name).await);
}

#[tokio::test]
async fn a_cancelled_or_abandoned_wait_ends_and_holds_no_turn() {
    // One turn for /mcp work: a waiting claim must not hold it.
    let http = zendesk_messaging_mcp::server::HttpOptions {
        access: std::sync::Arc::new(agents()),
        webhook_check: None,
        mcp_concurrency: 1,
        ..Default::default()
    };
    let t =
        TestServer::start_full(SupervisorSettings::default(), http, Some(AGENT_A), |_| {}).await;
    let b = TestServer::connect_as(&t.server, Recorder::default(), Some(AGENT_B)).await;
    let addr = t.server.addr;
    let handle = crate::mcp_support::start_cancellable_call(
        &t.client,
        "claim_conversation",
        json!({"waitSeconds": 50}),
        None,
    )
    .await;
    gauge_reaches(addr, "mcp_claims_waiting", 1.0).await;
    // The waiter gave its turn back: other work goes through at once.
    ok(&b, "list_switchboards", json!({})).await;
    handle
        .cancel(Some("done waiting".into()))
        .await
        .expect("cancel");
    gauge_reaches(addr, "mcp_claims_waiting", 0.0).await;

    // A plain (stateless) caller that goes away: its wait ends too.
    let url = t.server.mcp_url();
    let body = crate::mcp_support::stateless_request(
        "tools/call",
        json!({"name": "claim_conversation", "arguments": {"waitSeconds": 50}}),
    );
    let abandoned = tokio::spawn(async move {
        crate::mcp_support::try_post_stateless(
            &url,
            "tools/call",
            Some("claim_conversation"),
            &[("authorization", &format!("Bearer {AGENT_B}"))],
            body,
        )
        .await
    });
    gauge_reaches(addr, "mcp_claims_waiting", 1.0).await;
    abandoned.abort();
    gauge_reaches(addr, "mcp_claims_waiting", 0.0).await;
}

/// Forwards each webhook POST to the next of its targets in turn, as a load balancer in front
/// of replicas would. Returns its URL and where to put the targets.
async fn spreader() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let targets: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let t = targets.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (t, next) = (t.clone(), next.clone());
                async move {
                    let url = {
                        let all = t.lock().expect("targets");
                        all[next.fetch_add(1, Ordering::Relaxed) % all.len()].clone()
                    };
                    let mut request = reqwest::Client::new().post(url).body(body);
                    for (name, value) in &headers {
                        if name != "host" && name != "content-length" {
                            request = request.header(name, value);
                        }
                    }
                    match request.send().await {
                        Ok(r) => axum::http::StatusCode::from_u16(r.status().as_u16())
                            .unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
                        Err(_) => axum::http::StatusCode::BAD_GATEWAY,
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, targets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_hand_each_burst_to_one_agent_and_wake_waiters_anywhere() {
    let (hook, targets) = spreader().await;
    let Some(fleet) = crate::replicas::Fleet::start(3, crate::support::quick, |c| {
        c.webhook_url = Some(hook);
        c.webhook_timing.batch_window = Duration::ZERO;
    })
    .await
    else {
        return;
    };
    targets
        .lock()
        .expect("targets")
        .extend(fleet.replicas.iter().map(|r| r.server.webhook_url()));
    // Twelve agents, four on each replica, all waiting for work.
    let mut agents = vec![];
    for r in &fleet.replicas {
        for _ in 0..4 {
            agents.push((
                r.server.addr,
                TestServer::connect(&r.server, Recorder::default()).await,
            ));
        }
    }
    let claims = agents.iter().map(|(_, c)| {
        ok(
            c,
            "claim_conversation",
            json!({"waitSeconds": 10, "quietSeconds": 2}),
        )
    });
    // Six customers write bursts of one to three messages, the webhooks spread over the
    // replicas one POST each.
    let customers = [
        "demo-user-01",
        "demo-user-02",
        "demo-user-04",
        "demo-user-05",
        "demo-user-07",
        "demo-user-08",
    ];
    let mut convs = std::collections::BTreeMap::new();
    for user in customers {
        convs.insert(fleet.sim.conversation_of(user).await, user);
    }
    let bursts = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (i, (conv, user)) in convs.iter().enumerate() {
            for m in 0..=(i % 3) {
                customer_writes(&fleet.sim, conv, user, &format!("{user} part {m}")).await;
            }
        }
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(claims), bursts);
    let claimed: Vec<&Value> = answers.iter().filter(|a| !a["claim"].is_null()).collect();
    let mut got: Vec<&str> = claimed
        .iter()
        .map(|a| a["claim"]["conversationId"].as_str().expect("id"))
        .collect();
    got.sort_unstable();
    let want: Vec<&str> = convs.keys().map(String::as_str).collect();
    assert_eq!(
        got, want,
        "each conversation to exactly one agent: {answers:#?}"
    );
    for (i, (conv, _)) in convs.iter().enumerate() {
        let a = claimed
            .iter()
            .find(|a| a["claim"]["conversationId"] == conv.as_str())
            .expect("claimed");
        assert_eq!(
            a["unanswered"].as_array().map(Vec::len),
            Some(i % 3 + 1),
            "the whole burst, once, after the quiet period: {a}"
        );
    }
    assert!(
        answers
            .iter()
            .filter(|a| a["claim"].is_null())
            .all(|a| a["reason"] == "nothing_ready"),
        "{answers:#?}"
    );
    // A waiter on the last replica wakes when a webhook reaches another: well before the
    // periodic look (5 s) would find the work.
    let waiter = &agents[11].1;
    let started = tokio::time::Instant::now();
    let (woken, ()) = tokio::join!(
        ok(
            waiter,
            "claim_conversation",
            json!({"waitSeconds": 20, "quietSeconds": 0})
        ),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let free = fleet.sim.conversation_of("demo-user-10").await;
            customer_writes(&fleet.sim, &free, "demo-user-10", "anyone there?").await;
        }
    );
    assert!(!woken["claim"].is_null(), "{woken}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "woken by the notice, not the periodic look: {:?}",
        started.elapsed()
    );
    for (addr, _) in agents.iter().step_by(4) {
        gauge_reaches(*addr, "mcp_claims_waiting", 0.0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_goes_to_another_agent_and_the_old_holder_is_fenced() {
    let Some(fleet) = crate::replicas::Fleet::start(2, crate::support::quick, |_| {}).await else {
        return;
    };
    let (a, b) = (&fleet.replicas[0], &fleet.replicas[1]);
    let conv = fleet.sim.conversation_of("demo-user-02").await;
    let first = customer_writes(&fleet.sim, &conv, "demo-user-02", "hello").await;
    heard(&a.client, &conv, &first).await;
    let held = a
        .ok(
            "claim_conversation",
            json!({"conversationId": conv, "leaseSeconds": 5}),
        )
        .await;
    let old = held["claim"]["token"].as_str().expect("claim").to_owned();
    let busy = b
        .ok("claim_conversation", json!({"conversationId": conv}))
        .await;
    assert_eq!(busy["reason"], "held", "{busy}");
    // Nobody renews: the lease runs out and B, on the other replica, takes the conversation.
    let taken = b
        .ok(
            "claim_conversation",
            json!({"conversationId": conv, "waitSeconds": 10}),
        )
        .await;
    assert!(!taken["claim"].is_null(), "{taken}");
    let late = a
        .err(
            "send_message",
            json!({"conversationId": conv, "claim": old,
                "content": {"type": "text", "text": "sorry, I was away"}}),
        )
        .await;
    assert_eq!(late["error"], "claim_lost", "{late}");
    assert_eq!(late["reason"], "taken");
    let new = taken["claim"]["token"].as_str().expect("claim");
    b.ok(
        "send_message",
        json!({"conversationId": conv, "claim": new,
            "content": {"type": "text", "text": "hello, how can I help?"}}),
    )
    .await;
    assert_eq!(
        fleet.sim.count(POST_MESSAGE, "201").await,
        2,
        "the customer's message and one answer"
    );
    // Each replica counts the lapses it finds: the fleet's sum says one.
    let mut lapsed = 0.0;
    for r in &fleet.replicas {
        let text = crate::telemetry::metrics_at(&format!("http://{}", r.server.addr)).await;
        lapsed += crate::telemetry::sample_sum(&text, "mcp_claims_total", &[("outcome", "lapsed")]);
    }
    assert_eq!(lapsed, 1.0, "the lapse is counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_claims_fail_closed() {
    let Some(mut fleet) = crate::replicas::Fleet::start(1, crate::support::quick, |_| {}).await
    else {
        return;
    };
    fleet.redis.kill();
    let e = fleet.replicas[0].err("claim_conversation", json!({})).await;
    assert_eq!(e["error"], "unavailable", "{e}");
    assert!(e["retryAfterSeconds"].as_u64().is_some(), "{e}");
}

/// Whether the business shows the typing indicator in `conv`, as the simulator keeps it.
async fn typing(sim: &TestSim, conv: &str) -> bool {
    let state = sim.admin("GET", "/_sim/state", None).await;
    let apps = state["apps"].as_object().expect("apps");
    apps.values()
        .flat_map(|a| a["conversations"].as_array().cloned().unwrap_or_default())
        .find(|c| c["conversation"]["id"] == conv)
        .and_then(|c| c["businessTyping"].as_bool())
        .expect("the conversation")
}

#[tokio::test]
async fn the_customer_sees_the_agent_read_and_type_until_the_answer() {
    let (t, b) = start().await;
    let conv = t.conversation_of("demo-user-05").await;
    let first = customer_writes(&t.sim, &conv, "demo-user-05", "is anyone there?").await;
    heard(&t.client, &conv, &first).await;
    let claimed = ok(
        &t.client,
        "claim_conversation",
        json!({"conversationId": conv, "typing": true, "markRead": true}),
    )
    .await;
    assert_eq!(
        claimed["activities"],
        json!({"typing:start": "sent", "conversation:read": "sent"}),
        "{claimed}"
    );
    assert!(typing(&t.sim, &conv).await, "typing after the claim");
    let token = claimed["claim"]["token"].as_str().expect("claim");
    ok(
        &t.client,
        "send_message",
        json!({"conversationId": conv, "claim": token,
            "content": {"type": "text", "text": "yes, here"}}),
    )
    .await;
    assert!(!typing(&t.sim, &conv).await, "the answer ends typing");
    // Without a claim, the tool does the same; the guard applies to it too.
    let sent = ok(
        &b,
        "send_activity",
        json!({"conversationId": conv, "type": "typing:start"}),
    )
    .await;
    assert_eq!(sent["type"], "typing:start");
    assert!(typing(&t.sim, &conv).await);
    ok(
        &b,
        "send_activity",
        json!({"conversationId": conv, "type": "typing:stop"}),
    )
    .await;
    assert!(!typing(&t.sim, &conv).await);
    let human = t.conversation_of("demo-user-06").await;
    let e = err(
        &b,
        "send_activity",
        json!({"conversationId": human, "type": "typing:start"}),
    )
    .await;
    assert_eq!(e["error"], "not_in_control", "{e}");
    let bad = err(
        &b,
        "send_activity",
        json!({"conversationId": conv, "type": "typing"}),
    )
    .await;
    assert_eq!(bad["field"], "type", "{bad}");
    let activities = t
        .sim
        .count(
            "POST /v2/apps/{appId}/conversations/{conversationId}/activity",
            "200",
        )
        .await;
    assert_eq!(activities, 4, "read, typing, typing, stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_no_claim_is_held_by_two_agents() {
    use zendesk_messaging_mcp::shared::redis_store::test_server::RedisServer;
    let Some(mut redis) = RedisServer::start_persistent() else {
        return;
    };
    let mut listeners = vec![];
    for _ in 0..2 {
        listeners.push(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        );
    }
    // The simulator's webhooks reach the first replica.
    let first = listeners[0].local_addr().expect("addr");
    let sim = TestSim::start(crate::support::with_webhooks(&format!(
        "http://{first}{}",
        zendesk_messaging_mcp::server::WEBHOOK_PATH
    )))
    .await;
    let config = zendesk_messaging_mcp::server::simulator_config(&sim.base).expect("config");
    let mut replicas = vec![];
    for listener in listeners {
        replicas.push(
            crate::replicas::replica(listener, &config, crate::support::quick(), &redis).await,
        );
    }
    let conv = sim.conversation_of("demo-user-02").await;
    let first = customer_writes(&sim, &conv, "demo-user-02", "hello").await;
    heard(&replicas[0].client, &conv, &first).await;
    let held = replicas[0]
        .ok("claim_conversation", json!({"conversationId": conv}))
        .await;
    let a_token = held["claim"]["token"].as_str().expect("claim").to_owned();
    // Redis dies and comes back with what its append-only file kept.
    redis.kill();
    tokio::task::block_in_place(|| redis.restart());
    let mut b_answer = Value::Null;
    for _ in 0..100 {
        let r = replicas[1]
            .call("claim_conversation", json!({"conversationId": conv}))
            .await;
        if r.is_error != Some(true) {
            b_answer = structured("claim_conversation", &r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!b_answer.is_null(), "Redis answers again");
    let a_send = replicas[0]
        .call(
            "send_message",
            json!({"conversationId": conv, "claim": a_token,
                "content": {"type": "text", "text": "from A"}}),
        )
        .await;
    let a_sent = a_send.is_error != Some(true);
    let b_holds = !b_answer["claim"].is_null();
    assert!(
        !(a_sent && b_holds),
        "A sent under its claim while B holds the conversation: {b_answer}"
    );
    assert!(
        a_sent || b_holds,
        "the claim survived (append-only) or B has it"
    );
}
