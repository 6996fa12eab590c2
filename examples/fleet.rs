//! A fleet of agents answering customers: N agents and M customers against R server replicas
//! sharing one Redis, the simulator as the upstream (its webhooks spread over the replicas one
//! POST each, as a load balancer would), and what the customers got.
//!
//! ```sh
//! cargo build --release && cargo run --release --example fleet -- --agents 100 --customers 24 --seconds 24
//! ```
//!
//! Each customer writes bursts of 1 to 3 messages (300 ms apart), waits for an answer (15 s at
//! most), pauses 1 to 3 s and writes again, for `--seconds`. Two ways of working run side by
//! side, each on a fresh simulator, Redis and replicas:
//!
//! - `list`: each agent lists the conversations awaiting a reply, takes one at random, thinks
//!   (`--think-ms`, 1,000) and answers with an idempotency key per customer message answered
//!   (today's best practice without claims);
//! - `claims`: each agent calls `claim_conversation` (`waitSeconds` 10, `quietSeconds`
//!   `--quiet`, 2), thinks, and answers under the claim; a `superseded` answer is rewritten
//!   (another think) and sent again under the same claim.
//!
//! Read from the simulator's record afterwards, per burst (the user messages between two
//! answers): duplicate answers (more than one answer to a burst), stale answers (an answer that
//! does not cover a user message that reached the upstream before it), unanswered bursts, and
//! the time from a burst's last message to its answer (p50, p99). From the replicas' metrics:
//! Redis round trips per claim handed out. Then, `--waiters` (1,000) agents waiting at once on
//! one replica: its peak RSS against the same replica idle.
//!
//! Flags: `--agents N`, `--customers M`, `--seconds S`, `--replicas R`, `--think-ms T`,
//! `--quiet Q`, `--waiters W`, `--mode both|list|claims|waiters`.

use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zendesk_messaging_mcp::shared::redis_store::test_server::RedisServer;

mod common;
use common::{field, metric_sum, rss_kb, spawn};

const APP: &str = "5f0c1e2d3b4a596877889900";
const KEY: (&str, &str) = ("app_5f0c1e2d3b4a596877889901", "sim-app-secret");

struct Args {
    agents: usize,
    customers: usize,
    seconds: u64,
    replicas: usize,
    think: Duration,
    quiet: u64,
    waiters: usize,
    mode: String,
}

fn args() -> Args {
    let mut a = Args {
        agents: 100,
        customers: 24,
        seconds: 24,
        replicas: 3,
        think: Duration::from_millis(1000),
        quiet: 2,
        waiters: 1000,
        mode: "both".into(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        match pair[0].as_str() {
            "--agents" => a.agents = value.parse().expect("--agents N"),
            "--customers" => a.customers = value.parse().expect("--customers M"),
            "--seconds" => a.seconds = value.parse().expect("--seconds S"),
            "--replicas" => a.replicas = value.parse().expect("--replicas R"),
            "--think-ms" => a.think = Duration::from_millis(value.parse().expect("--think-ms T")),
            "--quiet" => a.quiet = value.parse().expect("--quiet Q"),
            "--waiters" => a.waiters = value.parse().expect("--waiters W"),
            "--mode" => {
                assert!(
                    ["both", "list", "claims", "waiters"].contains(&value),
                    "--mode both|list|claims|waiters"
                );
                a.mode = value.into();
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Forwards each webhook POST to the next replica in turn (a load balancer's round robin).
async fn spreader(targets: Vec<String>) -> String {
    let next = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(targets);
    let http = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (next, targets, http) = (next.clone(), targets.clone(), http.clone());
                async move {
                    let url = &targets[next.fetch_add(1, Ordering::Relaxed) % targets.len()];
                    let mut request = http.post(url).body(body);
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
    url
}

/// One world: Redis, the replicas (ports chosen first), the simulator sending its webhooks
/// through the spreader.
struct World {
    sim: Child,
    sim_url: String,
    servers: Vec<(Child, String)>,
    _redis: RedisServer,
}

impl World {
    async fn start(replicas: usize) -> Self {
        let redis = RedisServer::start_persistent()
            .expect("redis-server is needed (apt-get install redis-server)");
        let ports: Vec<u16> = (0..replicas)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("port")
                    .port()
            })
            .collect();
        let hooks = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/webhooks/sunco"))
            .collect();
        let hook = spreader(hooks).await;
        let (sim, text) = spawn(
            &[
                "simulator",
                "--bind",
                "127.0.0.1:0",
                "--seed",
                "demo",
                "--webhook-url",
                &hook,
                "--webhook-retry-base-ms",
                "200",
            ],
            &[],
            "SUNCO_KEY_SECRET",
        );
        let sim_url = field(&text, "SUNCO_API_URL=");
        let env = [
            ("SUNCO_APP_ID", APP.to_owned()),
            ("SUNCO_KEY_ID", KEY.0.to_owned()),
            ("SUNCO_KEY_SECRET", KEY.1.to_owned()),
            ("SUNCO_API_URL", sim_url.clone()),
            ("SUNCO_WEBHOOK_SECRET", "sim-webhook-secret".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        let mut servers = vec![];
        for port in ports {
            let bind = format!("127.0.0.1:{port}");
            let (child, text) = spawn(
                &[
                    "serve",
                    "--bind",
                    &bind,
                    "--redis-url",
                    &redis.url(),
                    "--rate-limit",
                    "1000:200",
                    "--max-in-flight",
                    "512",
                ],
                &env,
                "upstream:",
            );
            servers.push((child, field(&text, "MCP endpoint:")));
        }
        Self {
            sim,
            sim_url,
            servers,
            _redis: redis,
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for (s, _) in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

/// A stateless `tools/call`; the tool's structured result, or its error JSON (`error` set).
async fn call(http: &reqwest::Client, url: &str, tool: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": args,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let answer = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&body)
        .send()
        .await;
    let Ok(answer) = answer else {
        return json!({"error": "transport"});
    };
    let text = answer.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let result = &v["result"];
    if result["isError"] == true {
        let text = result["content"][0]["text"].as_str().unwrap_or("{}");
        return serde_json::from_str(text).unwrap_or(json!({"error": "unreadable"}));
    }
    if result["structuredContent"].is_object() {
        return result["structuredContent"].clone();
    }
    json!({"error": "protocol", "detail": v})
}

/// The simulator's REST API as the app key.
async fn rest(
    http: &reqwest::Client,
    sim: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let url = format!("{sim}/v2/apps/{APP}{path}");
    let mut r = match method {
        "POST" => http.post(url),
        _ => http.get(url),
    }
    .basic_auth(KEY.0, Some(KEY.1));
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send()
        .await
        .expect("simulator")
        .json()
        .await
        .unwrap_or(Value::Null)
}

/// M customers, each with a conversation of its own (the switchboard's default integration, the
/// bot, in control).
async fn customers(http: &reqwest::Client, sim: &str, m: usize) -> Vec<(String, String)> {
    let mut out = vec![];
    for i in 0..m {
        let user = format!("fleet-customer-{i:03}");
        rest(
            http,
            sim,
            "POST",
            "/users",
            Some(json!({"externalId": user})),
        )
        .await;
        let c = rest(
            http,
            sim,
            "POST",
            "/conversations",
            Some(json!({"type": "personal", "participants": [{"userExternalId": user}]})),
        )
        .await;
        let conv = c["conversation"]["id"]
            .as_str()
            .expect("conversation")
            .to_owned();
        out.push((user, conv));
    }
    out
}

/// A customer: bursts of 1 to 3 messages, then waits for an answer (15 s at most), pauses 1 to
/// 3 s, until `stop`.
async fn customer(
    http: reqwest::Client,
    sim: String,
    user: String,
    conv: String,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let mut n = seed;
    let mut burst = 0;
    while !stop.load(Ordering::Relaxed) {
        n = next_random(n);
        let size = 1 + (n >> 33) % 3;
        for part in 0..size {
            rest(
                &http,
                &sim,
                "POST",
                &format!("/conversations/{conv}/messages"),
                Some(json!({"author": {"type": "user", "userExternalId": user},
                    "content": {"type": "text", "text": format!("{user} burst {burst} part {part}")}})),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        burst += 1;
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(15) && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let page = rest(
                &http,
                &sim,
                "GET",
                &format!("/conversations/{conv}/messages"),
                None,
            )
            .await;
            let last = page["messages"].as_array().and_then(|m| m.last().cloned());
            if last.is_some_and(|m| m["author"]["type"] == "business") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(1000 + (n >> 40) % 2000)).await;
    }
}

/// The next number of a small linear congruential sequence (Knuth's MMIX constants): the
/// customers' and agents' choices, the same in every run.
fn next_random(n: u64) -> u64 {
    n.wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
}

/// What an answer says it answered: the id of the newest user message it covers.
fn answer_text(covers: &str) -> String {
    format!("answer covering {covers}")
}

/// The `list` agent: lists what awaits a reply, takes one at random, thinks, answers with an
/// idempotency key per message answered.
async fn list_agent(
    http: reqwest::Client,
    url: String,
    think: Duration,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        let listed = call(
            &http,
            &url,
            "list_conversations",
            json!({"awaitingReply": true, "limit": 100}),
        )
        .await;
        let waiting = listed["conversations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        n = next_random(n);
        let conv = waiting[(n >> 33) as usize % waiting.len()]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let page = call(
            &http,
            &url,
            "list_messages",
            json!({"conversationId": conv, "limit": 20}),
        )
        .await;
        let Some(newest) = page["messages"].as_array().and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m["author"]["type"] == "user")
                .cloned()
        }) else {
            continue;
        };
        let newest = newest["id"].as_str().unwrap_or_default().to_owned();
        tokio::time::sleep(think).await;
        call(
            &http,
            &url,
            "send_message",
            json!({"conversationId": conv, "idempotencyKey": format!("answer-{newest}"),
                "content": {"type": "text", "text": answer_text(&newest)}}),
        )
        .await;
    }
}

/// The `claims` agent: claims, thinks, answers under the claim; rewrites a superseded answer.
async fn claims_agent(
    http: reqwest::Client,
    url: String,
    think: Duration,
    quiet: u64,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let got = call(
            &http,
            &url,
            "claim_conversation",
            json!({"waitSeconds": 10, "quietSeconds": quiet}),
        )
        .await;
        let Some(token) = got["claim"]["token"].as_str().map(str::to_owned) else {
            if got.get("error").is_some() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            continue;
        };
        let conv = got["claim"]["conversationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut newest = got["unanswered"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["id"].as_str())
            .unwrap_or_default()
            .to_owned();
        for _ in 0..5 {
            tokio::time::sleep(think).await;
            let sent = call(
                &http,
                &url,
                "send_message",
                json!({"conversationId": conv, "claim": token, "idempotencyKey": format!("answer-{newest}"),
                    "content": {"type": "text", "text": answer_text(&newest)}}),
            )
            .await;
            match sent["error"].as_str() {
                Some("superseded") => {
                    newest = sent["arrived"]
                        .as_array()
                        .and_then(|m| m.last())
                        .and_then(|m| m["id"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                }
                _ => break,
            }
        }
    }
}

/// Per-burst figures from the simulator's record of every conversation.
#[derive(Default)]
struct Outcome {
    bursts: usize,
    answers: usize,
    duplicates: usize,
    stale: usize,
    unanswered: usize,
    delays_ms: Vec<f64>,
}

async fn judge(http: &reqwest::Client, sim: &str, convs: &[(String, String)]) -> Outcome {
    let mut o = Outcome::default();
    for (_, conv) in convs {
        let page = rest(
            http,
            sim,
            "GET",
            &format!("/conversations/{conv}/messages"),
            None,
        )
        .await;
        let msgs = page["messages"].as_array().cloned().unwrap_or_default();
        let at = |m: &Value| {
            time::OffsetDateTime::parse(
                m["received"].as_str().unwrap_or_default(),
                &time::format_description::well_known::Rfc3339,
            )
            .map(|t| t.unix_timestamp_nanos() as f64 / 1e6)
            .unwrap_or(0.0)
        };
        // The user messages since the last answer, and the answers to them so far.
        let mut burst: Vec<&Value> = vec![];
        let mut answered_this_burst = 0;
        for m in &msgs {
            if m["author"]["type"] == "user" {
                if answered_this_burst > 0 {
                    burst.clear();
                    answered_this_burst = 0;
                }
                if burst.is_empty() {
                    o.bursts += 1;
                }
                burst.push(m);
            } else if m["author"]["type"] == "business" && !burst.is_empty() {
                o.answers += 1;
                answered_this_burst += 1;
                let last = burst.last().expect("burst");
                if answered_this_burst > 1 {
                    o.duplicates += 1;
                } else {
                    o.delays_ms.push(at(m) - at(last));
                }
                // An answer names the newest user message it covers: a user message that
                // reached the upstream before the answer and is newer was ignored.
                let text = m["content"]["text"].as_str().unwrap_or_default();
                if !text.ends_with(last["id"].as_str().unwrap_or_default()) {
                    o.stale += 1;
                }
            }
        }
        if !burst.is_empty() && answered_this_burst == 0 {
            o.unanswered += 1;
        }
    }
    o
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

async fn run(a: &Args, mode: &str) {
    let world = World::start(a.replicas).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let convs = customers(&http, &world.sim_url, a.customers).await;
    let stop_customers = Arc::new(AtomicBool::new(false));
    let stop_agents = Arc::new(AtomicBool::new(false));
    let mut tasks = vec![];
    for i in 0..a.agents {
        let url = world.servers[i % world.servers.len()].1.clone();
        let (http, stop) = (http.clone(), stop_agents.clone());
        tasks.push(match mode {
            "list" => tokio::spawn(list_agent(http, url, a.think, i as u64 + 1, stop)),
            _ => tokio::spawn(claims_agent(http, url, a.think, a.quiet, stop)),
        });
    }
    let mut people = vec![];
    for (i, (user, conv)) in convs.iter().enumerate() {
        people.push(tokio::spawn(customer(
            http.clone(),
            world.sim_url.clone(),
            user.clone(),
            conv.clone(),
            i as u64 * 7919 + 13,
            stop_customers.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    stop_customers.store(true, Ordering::Relaxed);
    for p in people {
        let _ = p.await;
    }
    // The agents finish what was asked: up to 20 s more.
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_secs(20) {
        let o = judge(&http, &world.sim_url, &convs).await;
        if o.unanswered == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop_agents.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let mut o = judge(&http, &world.sim_url, &convs).await;
    let (mut claims, mut trips, mut lookups) = (0.0, 0.0, 0.0);
    for (_, url) in &world.servers {
        let text = http
            .get(url.replace("/mcp", "/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        claims += metric_sum(&text, "mcp_claims_total", &["outcome=\"claimed\""]);
        let count = "db_client_operation_duration_seconds_count";
        trips += metric_sum(&text, count, &["db_operation_name=\"claims."]);
        lookups += metric_sum(&text, count, &["db_operation_name=\"claims.claim\""]);
    }
    let per_claim = if claims > 0.0 {
        format!("{:.1} ({:.1} lookups)", trips / claims, lookups / claims)
    } else {
        "–".into()
    };
    println!(
        "| {mode} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {per_claim} |",
        a.agents,
        o.bursts,
        o.answers,
        o.duplicates,
        o.stale,
        o.unanswered,
        pct(&mut o.delays_ms, 0.5),
        pct(&mut o.delays_ms, 0.99),
    );
}

/// `waiters` agents waiting on one replica with nothing to claim: its RSS against idle.
async fn waiters(a: &Args) {
    let world = World::start(1).await;
    let (server, url) = &world.servers[0];
    let pid = server.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(70))
        .build()
        .expect("client");
    // Warm: a few calls, so what is measured is the waiting, not the first use.
    for _ in 0..20 {
        call(&http, url, "claim_conversation", json!({})).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle, _) = rss_kb(pid);
    let started = Instant::now();
    let mut calls = vec![];
    for _ in 0..a.waiters {
        let (http, url) = (http.clone(), url.clone());
        calls.push(tokio::spawn(async move {
            call(
                &http,
                &url,
                "claim_conversation",
                json!({"waitSeconds": 30}),
            )
            .await
        }));
    }
    let metrics = url.replace("/mcp", "/metrics");
    let mut waiting = 0.0;
    while started.elapsed() < Duration::from_secs(25) {
        let text = http
            .get(&metrics)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        waiting = metric_sum(&text, "mcp_claims_waiting", &[]);
        if waiting as usize >= a.waiters {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (now, peak) = rss_kb(pid);
    for c in calls {
        c.abort();
    }
    println!(
        "\n{} agents waiting on one replica ({waiting} counted): RSS idle {:.1} MB, with them {:.1} MB (peak {:.1} MB): +{:.1} MB, {:.1} kB per waiter",
        a.waiters,
        idle as f64 / 1024.0,
        now as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak.saturating_sub(idle)) as f64 / 1024.0,
        peak.saturating_sub(idle) as f64 / a.waiters.max(1) as f64,
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    if a.mode != "waiters" {
        println!(
            "\n{} agents, {} customers for {} s, {} replicas on Redis, think {} ms, quiet {} s\n",
            a.agents,
            a.customers,
            a.seconds,
            a.replicas,
            a.think.as_millis(),
            a.quiet
        );
        println!(
            "| mode | agents | bursts | answers | duplicate | stale | unanswered bursts | burst → answer p50 ms | p99 ms | Redis scripts per claim (of which lookups) |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for mode in ["list", "claims"] {
            if a.mode == "both" || a.mode == mode {
                run(&a, mode).await;
            }
        }
    }
    if a.mode == "both" || a.mode == "waiters" {
        waiters(&a).await;
    }
}
