//! End-to-end load: the simulator and the server as separate processes, N concurrent MCP callers
//! over Streamable HTTP with a realistic mix, then the same operations straight to the simulator
//! over REST, and the ratios (latency, throughput, CPU spent per call by each process); then
//! goodput under a rate limit R with 4R offered.
//!
//! ```sh
//! cargo build --release && cargo run --release --example loadgen -- --callers 64 --seconds 10
//! ```
//!
//! Flags: `--callers N`, `--seconds S`, `--goodput-rps R`, `--protocol sessions|stateless`,
//! `--client raw|rmcp` (how session callers speak: plain HTTP requests that read the answer as
//! text, as the REST phase does, or the rmcp client with its typed models), `--rate N` (offer N
//! calls/s in all, spread over the callers, instead of calling back to back), `--phase
//! all|throughput|goodput|replicas` (`replicas`: the goodput run with `--replicas N` server
//! processes, 3 by default, sharing one `redis-server` the load generator starts, with each
//! replica's throughput and Redis round trips per call), `--offered X` (the goodput phases offer
//! X × R calls/s; 4 by default). Environment: `LOADGEN_RUST_LOG` is the server's log level (`warn`),
//! `LOADGEN_IN_FLIGHT` its `--max-in-flight` (512, so the dispatcher does not cap throughput).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt, service::RunningService};
use serde_json::{Value, json};

mod common;
use common::{field, metric_sum, rss_kb, spawn};

const APP: &str = "5f0c1e2d3b4a596877889900";
const BASIC: &str = "app_5f0c1e2d3b4a596877889901:sim-app-secret";

struct Args {
    callers: usize,
    seconds: u64,
    goodput_rps: f64,
    /// How the MCP phase's callers speak (`--protocol`, `--client`).
    kind: CallerKind,
    /// Calls per second offered in all (0: each caller calls again as soon as it has an answer).
    rate: f64,
    phase: String,
    /// Replicas sharing one Redis in the `replicas` phase.
    replicas: usize,
    /// Calls offered in the goodput phases, as a multiple of R (`--offered`, 4).
    offered: f64,
}

fn args() -> Args {
    let mut a = Args {
        callers: 64,
        seconds: 10,
        goodput_rps: 50.0,
        kind: CallerKind::Sessions,
        rate: 0.0,
        phase: "all".to_owned(),
        replicas: 3,
        offered: 4.0,
    };
    let (mut stateless, mut rmcp) = (false, false);
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        match pair[0].as_str() {
            "--callers" => a.callers = value.parse().expect("--callers N"),
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--goodput-rps" => a.goodput_rps = value.parse().expect("--goodput-rps R"),
            "--protocol" => {
                stateless = match value {
                    "stateless" => true,
                    "sessions" => false,
                    _ => panic!("--protocol sessions|stateless"),
                }
            }
            "--client" => {
                rmcp = match value {
                    "rmcp" => true,
                    "raw" => false,
                    _ => panic!("--client raw|rmcp"),
                }
            }
            "--rate" => a.rate = value.parse().expect("--rate N"),
            "--replicas" => a.replicas = value.parse().expect("--replicas N"),
            "--offered" => a.offered = value.parse().expect("--offered X (a multiple of R)"),
            "--phase" => {
                assert!(
                    ["all", "throughput", "goodput", "replicas"].contains(&value),
                    "--phase all|throughput|goodput|replicas"
                );
                a.phase = value.to_owned();
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a.kind = match (stateless, rmcp) {
        (true, _) => CallerKind::Stateless,
        (false, true) => CallerKind::RmcpSessions,
        (false, false) => CallerKind::Sessions,
    };
    a
}

#[derive(Clone, Copy)]
enum CallerKind {
    /// 2025-11-25 sessions spoken as plain HTTP requests.
    Sessions,
    /// 2025-11-25 sessions through the rmcp client.
    RmcpSessions,
    /// The stateless 2026-07-28 protocol (plain POSTs).
    Stateless,
}

impl CallerKind {
    fn label(self) -> &'static str {
        match self {
            CallerKind::Sessions => "2025-11-25 sessions",
            CallerKind::RmcpSessions => "2025-11-25 sessions, rmcp client",
            CallerKind::Stateless => "stateless 2026-07-28",
        }
    }
}

/// CPU time (user + system) a process has used so far, in microseconds.
fn cpu_micros(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks * 1_000_000 / clock_ticks_per_second()
}

/// The kernel's clock tick (`getconf CLK_TCK`, 100 on the Linux systems this runs on).
fn clock_ticks_per_second() -> u64 {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// CPU used by the load generator, the server and the simulator over a phase.
struct Cpu {
    pids: [u32; 3],
    at: [u64; 3],
}

impl Cpu {
    fn start(server: u32, simulator: u32) -> Self {
        let pids = [std::process::id(), server, simulator];
        Cpu {
            pids,
            at: pids.map(cpu_micros),
        }
    }

    /// Microseconds of CPU per call for each process, over `calls`.
    fn per_call(&self, calls: usize) -> [f64; 3] {
        let mut out = [0.0; 3];
        for (i, pid) in self.pids.iter().enumerate() {
            out[i] = (cpu_micros(*pid) - self.at[i]) as f64 / calls.max(1) as f64;
        }
        out
    }
}

/// Latencies and outcomes of one phase.
#[derive(Default)]
struct Tally {
    micros: Vec<u64>,
    outcomes: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, took: Duration, outcome: &str) {
        self.micros.push(took.as_micros() as u64);
        *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
    }

    fn pct(&self, p: f64) -> f64 {
        let mut v = self.micros.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i] as f64 / 1000.0
    }

    fn report(&self, name: &str, seconds: f64, cpu: [f64; 3]) -> f64 {
        let rate = self.micros.len() as f64 / seconds;
        println!(
            "| {name} | {:.0} calls/s | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:?} |",
            rate,
            self.pct(0.5),
            self.pct(0.9),
            self.pct(0.99),
            self.pct(1.0),
            cpu[0],
            cpu[1],
            cpu[2],
            self.outcomes
        );
        rate
    }
}

/// What one call of the mix is.
#[derive(Clone, Copy)]
enum Op {
    GetConversation,
    ListMessages,
    GetUser,
    Send,
    SwitchboardStatus,
}

fn op_of(i: u64) -> Op {
    match i % 10 {
        0..=1 => Op::GetConversation,
        2..=3 => Op::ListMessages,
        4..=5 => Op::GetUser,
        6..=8 => Op::Send,
        _ => Op::SwitchboardStatus,
    }
}

/// The tool and arguments of call `n` of the mix.
fn tool_call(op: Op, conv: &str, n: u64, tag: &str) -> (&'static str, Value) {
    match op {
        Op::GetConversation => ("get_conversation", json!({"conversationId": conv})),
        Op::ListMessages => (
            "list_messages",
            json!({"conversationId": conv, "limit": 10}),
        ),
        Op::GetUser => ("get_user", json!({"userId": "demo-user-07"})),
        Op::Send => (
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": format!("{tag} {n}")},
                   "idempotencyKey": format!("{tag}-{n}")}),
        ),
        Op::SwitchboardStatus => ("get_switchboard_status", json!({"conversationId": conv})),
    }
}

async fn mcp_client(url: &str) -> RunningService<RoleClient, ClientConfig> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    ClientConfig::default()
        .serve(transport)
        .await
        .expect("connect")
}

async fn mcp_call(
    client: &RunningService<RoleClient, ClientConfig>,
    op: Op,
    conv: &str,
    n: u64,
    tag: &str,
) -> String {
    let (tool, args) = tool_call(op, conv, n, tag);
    let Value::Object(map) = args else {
        return "bad_arguments".into();
    };
    match client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(map))
        .await
    {
        Ok(r) if r.is_error != Some(true) => "ok".into(),
        Ok(r) => r
            .content
            .iter()
            .find_map(|c| c.as_text())
            .and_then(|t| serde_json::from_str::<Value>(&t.text).ok())
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "tool_error".into()),
        Err(_) => "protocol_error".into(),
    }
}

/// How one caller of the MCP phase reaches the server.
enum Caller {
    /// The rmcp client (a 2025-11-25 session, typed models).
    Rmcp(RunningService<RoleClient, ClientConfig>),
    /// A 2025-11-25 session spoken as plain HTTP requests whose answers are read as text.
    Raw {
        http: reqwest::Client,
        url: String,
        session: String,
    },
    /// The stateless 2026-07-28 protocol: plain POSTs, no session.
    Stateless { http: reqwest::Client, url: String },
}

const SESSION_VERSION: &str = "2025-11-25";
const STATELESS_VERSION: &str = "2026-07-28";

fn post_mcp(
    http: &reqwest::Client,
    url: &str,
    version: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    http.post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", version)
        .body(body.to_string())
}

/// Opens a session with `initialize` and `notifications/initialized`, as any client does.
async fn raw_session(http: &reqwest::Client, url: &str) -> Caller {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": SESSION_VERSION, "capabilities": {},
        "clientInfo": {"name": "loadgen", "version": "1"}}});
    let answer = post_mcp(http, url, SESSION_VERSION, &init)
        .send()
        .await
        .expect("initialize");
    let session = answer
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_owned();
    let _ = answer.bytes().await;
    let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let answer = post_mcp(http, url, SESSION_VERSION, &done)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("initialized");
    assert!(
        answer.status().is_success(),
        "initialized: {}",
        answer.status()
    );
    Caller::Raw {
        http: http.clone(),
        url: url.to_owned(),
        session,
    }
}

/// The outcome of a `tools/call` answer read as text (plain JSON or an SSE stream): `ok`, the
/// tool error's class, or `protocol_error`. A success is recognised without parsing.
fn outcome_of_text(text: &str) -> String {
    if text.contains("\"isError\":false") {
        return "ok".into();
    }
    let message = text
        .lines()
        .map(|l| l.strip_prefix("data:").unwrap_or(l).trim())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m.get("id").is_some());
    match message {
        Some(m) if m["result"]["isError"] == true => m["result"]["content"][0]["text"]
            .as_str()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .and_then(|e| e["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "tool_error".into()),
        _ => "protocol_error".into(),
    }
}

impl Caller {
    async fn call(&self, op: Op, conv: &str, n: u64, tag: &str) -> String {
        let (http, url, version, session) = match self {
            Caller::Rmcp(client) => return mcp_call(client, op, conv, n, tag).await,
            Caller::Raw { http, url, session } => (http, url, SESSION_VERSION, Some(session)),
            Caller::Stateless { http, url } => (http, url, STATELESS_VERSION, None),
        };
        let (tool, args) = tool_call(op, conv, n, tag);
        let mut params = json!({"name": tool, "arguments": args});
        if session.is_none() {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
                "io.modelcontextprotocol/clientCapabilities": {}});
        }
        let body = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params});
        let mut request = post_mcp(http, url, version, &body)
            .header("mcp-method", "tools/call")
            .header("mcp-name", tool);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        match request.send().await {
            Ok(r) => outcome_of_text(&r.text().await.unwrap_or_default()),
            Err(_) => "error".into(),
        }
    }
}

async fn rest_call(http: &reqwest::Client, sim: &str, op: Op, conv: &str, n: u64) -> String {
    let base = format!("{sim}/v2/apps/{APP}");
    let (user, pass) = BASIC.split_once(':').expect("basic");
    let req = match op {
        Op::GetConversation => http.get(format!("{base}/conversations/{conv}")),
        Op::ListMessages => http.get(format!("{base}/conversations/{conv}/messages")),
        Op::GetUser => http.get(format!("{base}/users/demo-user-07")),
        Op::Send => http
            .post(format!("{base}/conversations/{conv}/messages"))
            .json(&json!({"author": {"type": "business"},
                          "content": {"type": "text", "text": format!("direct {n}")}})),
        // The server composes this from the conversation and its cached switchboard.
        Op::SwitchboardStatus => http.get(format!("{base}/conversations/{conv}")),
    };
    match req.basic_auth(user, Some(pass)).send().await {
        Ok(r) if r.status().is_success() => {
            let _ = r.bytes().await;
            "ok".into()
        }
        Ok(r) => format!("http_{}", r.status().as_u16()),
        Err(_) => "error".into(),
    }
}

async fn conversations(http: &reqwest::Client, sim: &str) -> Vec<String> {
    let (user, pass) = BASIC.split_once(':').expect("basic");
    let mut out = Vec::new();
    for n in 1..=20 {
        let r: Value = http
            .get(format!(
                "{sim}/v2/apps/{APP}/conversations?filter[userExternalId]=demo-user-{n:02}"
            ))
            .basic_auth(user, Some(pass))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        if let Some(id) = r["conversations"][0]["id"].as_str() {
            out.push(id.to_owned());
        }
    }
    out
}

/// Runs `callers` concurrent loops for `seconds`; each call is timed and its outcome tallied.
/// With `rate` > 0 the calls are offered at that many per second in all, each caller on its
/// own schedule (a caller still has one call at a time: if answers fall behind, the throughput
/// reported falls short of the rate offered).
async fn drive<F, Fut>(callers: usize, seconds: u64, rate: f64, call: F) -> (Tally, f64)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let call = Arc::new(call);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let (call, tally, stop, counter) =
            (call.clone(), tally.clone(), stop.clone(), counter.clone());
        let mut schedule = (rate > 0.0).then(|| {
            let period = Duration::from_secs_f64(callers as f64 / rate);
            let first = tokio::time::Instant::now() + Duration::from_secs_f64(c as f64 / rate);
            tokio::time::interval_at(first, period)
        });
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(s) = schedule.as_mut() {
                    s.tick().await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                let t0 = Instant::now();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let outcome = call(c, n).await;
                tally.lock().expect("tally").add(t0.elapsed(), &outcome);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let tally = Arc::try_unwrap(tally)
        .ok()
        .expect("tally")
        .into_inner()
        .expect("tally");
    (tally, elapsed)
}

/// The server's environment: the simulator's demo key, and its log level (spans are recorded at
/// `info`): LOADGEN_RUST_LOG, else `warn`.
fn server_env(sim_url: &str) -> [(&'static str, String); 5] {
    [
        ("SUNCO_APP_ID", APP.to_owned()),
        ("SUNCO_KEY_ID", "app_5f0c1e2d3b4a596877889901".to_owned()),
        ("SUNCO_KEY_SECRET", "sim-app-secret".to_owned()),
        ("SUNCO_API_URL", sim_url.to_owned()),
        (
            "RUST_LOG",
            std::env::var("LOADGEN_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ),
    ]
}

async fn throughput(a: &Args) {
    let (mut sim, sim_text) = spawn(
        &["simulator", "--bind", "127.0.0.1:0", "--seed", "demo"],
        &[],
        "SUNCO_KEY_SECRET",
    );
    let sim_url = field(&sim_text, "SUNCO_API_URL=");
    let env = server_env(&sim_url);
    let (mut server, text) = spawn(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--rate-limit",
            "1000000:100000",
            "--max-in-flight",
            &std::env::var("LOADGEN_IN_FLIGHT").unwrap_or_else(|_| "512".into()),
            "--queue",
            "100000",
        ],
        &env,
        "upstream:",
    );
    let url = field(&text, "MCP endpoint:");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.callers.max(64))
        .build()
        .expect("client");
    let convs = Arc::new(conversations(&http, &sim_url).await);

    let mut callers = Vec::new();
    for _ in 0..a.callers {
        callers.push(match a.kind {
            CallerKind::Stateless => Caller::Stateless {
                http: http.clone(),
                url: url.clone(),
            },
            CallerKind::RmcpSessions => Caller::Rmcp(mcp_client(&url).await),
            CallerKind::Sessions => raw_session(&http, &url).await,
        });
    }
    let callers = Arc::new(callers);
    let (c2, cv) = (callers.clone(), convs.clone());
    let cpu = Cpu::start(server.id(), sim.id());
    let (mcp, mcp_secs) = drive(a.callers, a.seconds, a.rate, move |c, n| {
        let (callers, conv) = (c2.clone(), cv[n as usize % cv.len()].clone());
        async move { callers[c].call(op_of(n), &conv, n, "load").await }
    })
    .await;
    let mcp_cpu = cpu.per_call(mcp.micros.len());
    let (h, s, cv) = (http.clone(), sim_url.clone(), convs.clone());
    let cpu = Cpu::start(server.id(), sim.id());
    let (direct, direct_secs) = drive(a.callers, a.seconds, a.rate, move |_, n| {
        let (h, s, conv) = (h.clone(), s.clone(), cv[n as usize % cv.len()].clone());
        async move { rest_call(&h, &s, op_of(n), &conv, n).await }
    })
    .await;
    let direct_cpu = cpu.per_call(direct.micros.len());
    let (_, rss) = rss_kb(server.id());
    let protocol = a.kind.label();
    let offered = if a.rate > 0.0 {
        format!("{} calls/s offered", a.rate)
    } else {
        "back to back".to_owned()
    };
    println!(
        "\n{} callers ({protocol}), {offered}, {} s per phase\n",
        a.callers, a.seconds
    );
    println!(
        "| phase | throughput | p50 ms | p90 ms | p99 ms | max ms | CPU µs/call: load generator | server | simulator | outcomes |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mcp_rate = mcp.report("MCP (server)", mcp_secs, mcp_cpu);
    let direct_rate = direct.report("REST (direct)", direct_secs, direct_cpu);
    println!(
        "\nadded latency per call: p50 {:.2} ms, p99 {:.2} ms; MCP throughput = {:.0}% of direct; \
         server CPU per call = {:.1}x the simulator's per direct call; server peak RSS {} MB",
        mcp.pct(0.5) - direct.pct(0.5),
        mcp.pct(0.99) - direct.pct(0.99),
        100.0 * mcp_rate / direct_rate,
        mcp_cpu[1] / direct_cpu[2].max(0.001),
        rss / 1024
    );
    drop(callers);
    let _ = server.kill();
    let _ = sim.kill();
}

/// Goodput under a limit R with 4R offered: one server in memory (`replicas` = 0), or
/// `replicas` server processes sharing one Redis, the calls spread over them in turn.
async fn goodput(a: &Args, replicas: usize) {
    let r = a.goodput_rps;
    let burst = (r / 5.0).ceil().max(1.0) as u32;
    let limit = format!("{r}:{burst}");
    let (mut sim, sim_text) = spawn(
        &[
            "simulator",
            "--bind",
            "127.0.0.1:0",
            "--seed",
            "demo",
            "--rate-limit",
            &limit,
            "--retry-after",
        ],
        &[],
        "SUNCO_KEY_SECRET",
    );
    let sim_url = field(&sim_text, "SUNCO_API_URL=");
    let env = server_env(&sim_url);
    let server_limit = format!("{r}:{burst}");
    // A redis-server on a Unix socket in a fresh folder, configured as production should run
    // it (append-only, `appendfsync always`, `noeviction`); stopped and removed on drop.
    let redis = (replicas > 0).then(|| {
        zendesk_messaging_mcp::shared::redis_store::test_server::RedisServer::start_persistent()
            .expect("redis-server is needed for the replicas phase (apt-get install redis-server)")
    });
    let mut servers = Vec::new();
    for _ in 0..replicas.max(1) {
        let mut flags = vec![
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--rate-limit",
            &server_limit,
        ];
        let url = redis.as_ref().map(|r| r.url());
        if let Some(url) = &url {
            flags.extend(["--redis-url", url.as_str()]);
        }
        let (server, text) = spawn(&flags, &env, "upstream:");
        servers.push((server, field(&text, "MCP endpoint:")));
    }
    let http = reqwest::Client::new();
    let convs = Arc::new(conversations(&http, &sim_url).await);
    let mut clients = Vec::new();
    for (_, url) in &servers {
        clients.push(mcp_client(url).await);
    }
    let clients = Arc::new(clients);
    // Offer 4R calls per second (`--offered`): paced, each call on its own task.
    let offered = (a.offered * r).round().max(1.0) as u64;
    let seconds = a.seconds;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let sends = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / offered as f64));
    for n in 0..offered * seconds {
        tick.tick().await;
        let (clients, conv, tally, sends) = (
            clients.clone(),
            convs[n as usize % convs.len()].clone(),
            tally.clone(),
            sends.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let op = op_of(n);
            let client = &clients[n as usize % clients.len()];
            let outcome = mcp_call(client, op, &conv, n, "goodput").await;
            tally.lock().expect("tally").add(t0.elapsed(), &outcome);
            if matches!(op, Op::Send) {
                sends
                    .lock()
                    .expect("sends")
                    .push((format!("goodput {n}"), outcome == "ok"));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The simulator's own count of what it answered 2xx, over the run.
    let stats: Value = http
        .get(format!("{sim_url}/_sim/stats"))
        .bearer_auth("sim-admin-token")
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let served: u64 = stats["counts"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, by)| by.as_object().into_iter().flatten())
        .filter(|(status, _)| status.starts_with('2'))
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    let throttled: u64 = stats["counts"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, by)| by["rateLimited"].as_u64().unwrap_or(0))
        .sum();
    // Every send: stored once if reported ok, never twice. (Lift the limit to read them back.)
    http.put(format!("{sim_url}/_sim/faults"))
        .bearer_auth("sim-admin-token")
        .json(&json!({}))
        .send()
        .await
        .expect("faults");
    let (user, pass) = BASIC.split_once(':').expect("basic");
    let mut stored: BTreeMap<String, u64> = BTreeMap::new();
    for conv in convs.iter() {
        let mut before: Option<String> = None;
        loop {
            let q = before
                .as_ref()
                .map(|b| format!("?page[before]={b}"))
                .unwrap_or_default();
            let page: Value = http
                .get(format!(
                    "{sim_url}/v2/apps/{APP}/conversations/{conv}/messages{q}"
                ))
                .basic_auth(user, Some(pass))
                .send()
                .await
                .expect("messages")
                .json()
                .await
                .expect("json");
            let msgs = page["messages"].as_array().cloned().unwrap_or_default();
            for m in &msgs {
                if let Some(t) = m["content"]["text"].as_str() {
                    *stored.entry(t.to_owned()).or_default() += 1;
                }
            }
            if page["meta"]["hasMore"] != true {
                break;
            }
            before = msgs
                .first()
                .and_then(|m| m["id"].as_str())
                .map(str::to_owned);
        }
    }
    let sends = sends.lock().expect("sends").clone();
    let lost = sends
        .iter()
        .filter(|(t, ok)| *ok && !stored.contains_key(t))
        .count();
    let duplicated = sends
        .iter()
        .filter(|(t, _)| stored.get(t).copied().unwrap_or(0) > 1)
        .count();
    let tally = std::mem::take(&mut *tally.lock().expect("tally"));
    let goodput = served as f64 / elapsed;
    let setup = if replicas > 0 {
        format!("{replicas} replicas sharing Redis")
    } else {
        "one server, state in memory".to_owned()
    };
    println!(
        "\ngoodput under a limit of R = {r} requests/s, {offered} calls/s offered for {seconds} s ({setup})"
    );
    println!(
        "| R | offered | upstream 2xx/s | goodput / R | 429s | call p50 ms | p99 ms | max ms | sends | lost | duplicated | outcomes |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {r} | {offered}/s | {goodput:.1} | {:.0}% | {throttled} | {:.1} | {:.1} | {:.1} | {} | {lost} | {duplicated} | {:?} |",
        100.0 * goodput / r,
        tally.pct(0.5),
        tally.pct(0.99),
        tally.pct(1.0),
        sends.len(),
        tally.outcomes
    );
    if replicas > 0 {
        println!(
            "\n| replica | calls answered / s | ok / s | Redis round trips per call: all | budget leases | keyed sends | heartbeats / s |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        for (i, (_, url)) in servers.iter().enumerate() {
            let text = http
                .get(url.replace("/mcp", "/metrics"))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            let calls = metric_sum(&text, "mcp_tool_calls_total", &[]);
            let ok = metric_sum(&text, "mcp_tool_calls_total", &["outcome=\"ok\""]);
            let trips = "db_client_operation_duration_seconds_count";
            let all = metric_sum(&text, trips, &[]);
            let budget = metric_sum(&text, trips, &["db_operation_name=\"budget\""]);
            let keyed = metric_sum(&text, trips, &["db_operation_name=\"idempotency."]);
            let beats = metric_sum(&text, trips, &["db_operation_name=\"heartbeat\""]);
            println!(
                "| {i} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} |",
                calls / elapsed,
                ok / elapsed,
                all / calls.max(1.0),
                budget / calls.max(1.0),
                keyed / calls.max(1.0),
                beats / elapsed
            );
        }
    }
    drop(clients);
    for (mut server, _) in servers {
        let _ = server.kill();
    }
    drop(redis);
    let _ = sim.kill();
}

#[tokio::main]
async fn main() {
    let a = args();
    if a.phase == "replicas" {
        goodput(&a, a.replicas.max(1)).await;
        return;
    }
    if a.phase != "goodput" {
        throughput(&a).await;
    }
    if a.phase != "throughput" {
        goodput(&a, 0).await;
    }
}
