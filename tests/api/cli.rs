//! The command line, as a new user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zendesk-messaging-mcp"))
}

#[test]
fn simulator_prints_its_url_and_credentials() {
    let mut child = bin()
        .args(["simulator", "--seed", "demo", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().take(12) {
        seen.push(line.expect("line"));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(text.contains("listening on http://127.0.0.1:"), "{text}");
    for needle in [
        "SUNCO_API_URL=http://127.0.0.1:",
        "SUNCO_APP_ID=5f0c1e2d3b4a596877889900",
        "SUNCO_KEY_ID=app_",
        "SUNCO_KEY_SECRET=sim-app-secret",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[test]
fn simulator_rejects_bad_flags() {
    let out = bin()
        .args(["simulator", "--fail-rate", "3", "--bind", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failRate must be from 0 to 1"), "{err}");
}

#[test]
fn serve_refuses_no_turns_for_mcp_calls() {
    let out = bin()
        .args(["serve", "--simulator", "--mcp-concurrency", "0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--mcp-concurrency"), "{err}");
}

#[test]
fn config_errors_are_one_line_naming_the_variable() {
    let out = bin()
        .arg("config")
        .env_clear()
        .env("SUNCO_APP_ID", "5f748c1a2b5315fc007e7977")
        .env("SUNCO_KEY_ID", "app_1")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("SUNCO_KEY_SECRET"), "{err}");

    let out = bin()
        .arg("config")
        .env_clear()
        .env("SUNCO_APP_ID", "5f748c1a2b5315fc007e7977")
        .env("SUNCO_KEY_ID", "app_1")
        .env("SUNCO_KEY_SECRET", "do-not-print-me")
        .env("SUNCO_API_URL", "https://acme.zendesk.com/sc")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("https://acme.zendesk.com/sc"), "{text}");
    assert!(!text.contains("do-not-print-me"), "{text}");
}

#[test]
fn config_refuses_blank_secrets_and_key_ids_without_an_id() {
    for (key_id, secret, variable) in [
        ("app_1", "   ", "SUNCO_KEY_SECRET"),
        ("app_1", "\t\n", "SUNCO_KEY_SECRET"),
        ("app_", "s3cret", "SUNCO_KEY_ID"),
    ] {
        let out = bin()
            .arg("config")
            .env_clear()
            .env("SUNCO_APP_ID", "5f748c1a2b5315fc007e7977")
            .env("SUNCO_KEY_ID", key_id)
            .env("SUNCO_KEY_SECRET", secret)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{key_id} {secret:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("error: {variable}")), "{err}");
    }
}

/// The value of the banner line `name` (`MCP endpoint:`, `webhooks:`, ...) in `text`.
pub(crate) fn banner_field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .map(|u| u.trim().to_owned())
        .unwrap_or_else(|| panic!("no {name} line in\n{text}"))
}

/// The embedded simulator's base URL, from the banner's `upstream:` line.
fn banner_simulator_url(text: &str) -> String {
    banner_field(text, "upstream:")
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("simulator url")
        .to_owned()
}

/// `serve --simulator --bind BIND` plus `extra`, with stderr as given; returns the child, the
/// banner up to its `writes:` line and the rest of stdout.
pub(crate) fn serve_simulator(
    bind: &str,
    extra: &[&std::ffi::OsStr],
    stderr: Stdio,
) -> (
    std::process::Child,
    String,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = bin()
        .args(["serve", "--simulator", "--bind", bind])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let banner = read_until(&mut lines, "writes:");
    (child, banner, lines)
}

/// Reads lines until one contains `needle`; returns everything read.
pub(crate) fn read_until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    needle: &str,
) -> String {
    let mut seen = Vec::new();
    for line in lines.by_ref().take(40) {
        let line = line.expect("line");
        let done = line.contains(needle);
        seen.push(line);
        if done {
            break;
        }
    }
    seen.join("\n")
}

#[test]
fn serve_with_the_simulator_prints_the_endpoint_and_a_client_snippet_and_answers_mcp() {
    let mut child = bin()
        .args(["serve", "--simulator", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let text = read_until(&mut lines, "}");
    let text = text + "\n" + &read_until(&mut lines, "}");
    let url = banner_field(&text, "MCP endpoint:");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );
    assert!(text.contains("\"mcpServers\""), "{text}");
    assert!(text.contains(&format!("\"url\": \"{url}\"")), "{text}");
    assert!(text.contains("the embedded simulator"), "{text}");
    // A stateless (2026-07-28) tools/list over plain HTTP.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let body = runtime
        .block_on(crate::mcp_support::post_stateless(
            &url,
            "tools/list",
            None,
            &[],
            crate::mcp_support::stateless_request("tools/list", serde_json::json!({})),
        ))
        .body;
    assert!(body.contains("\"send_message\""), "{body}");
    // The quick start's headline: customers waiting for a reply. The demo world's history
    // reached the server as webhook events once it listened, so the index knows them.
    let args = serde_json::json!({"awaitingReply": true, "activeSwitchboardIntegration": "bot"});
    let by_bot = std::sync::Mutex::new(serde_json::Value::Null);
    runtime.block_on(crate::support::eventually(
        "the demo history's waiting customers are indexed",
        || async {
            let r = crate::mcp_support::call_stateless(
                &url,
                "list_conversations",
                serde_json::json!({"arguments": args}),
                &[],
            )
            .await;
            let listed = r.json()["result"]["structuredContent"].clone();
            let enough = listed["conversations"]
                .as_array()
                .is_some_and(|c| c.len() >= 4);
            *by_bot.lock().expect("lock") = listed;
            enough
        },
    ));
    let by_bot = by_bot.into_inner().expect("lock");
    let found = by_bot["conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        found.len() >= 4,
        "the bot-held conversations that end with a customer's message: {by_bot}"
    );
    for c in &found {
        assert_eq!(c["awaitingReply"], true, "{c}");
        assert_eq!(c["activeSwitchboardIntegration"]["name"], "bot", "{c}");
    }
}

#[test]
fn stdio_serves_the_same_tools_over_stdin_and_stdout() {
    use std::io::Write;
    let mut child = bin()
        .args(["stdio", "--simulator"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut send = |v: serde_json::Value| {
        writeln!(stdin, "{v}").expect("write");
        stdin.flush().expect("flush");
    };
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "cli-test", "version": "0"}}}),
    );
    let init = read_until(&mut lines, "\"id\":1");
    assert!(init.contains("zendesk-messaging-mcp"), "{init}");
    send(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "list_conversations", "arguments": {"userExternalId": "demo-user-01"}}}),
    );
    let answer = read_until(&mut lines, "\"id\":2");
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value = serde_json::from_str(answer.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("not JSON-RPC: {answer}"));
    assert_eq!(v["result"]["isError"], false, "{v}");
    assert!(
        v["result"]["structuredContent"]["conversations"][0]["id"].is_string(),
        "{v}"
    );
}

#[test]
fn a_clients_traceparent_parents_the_server_spans_and_reaches_the_simulator() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let receiver = runtime.block_on(crate::telemetry::Receiver::start());
    let mut child = bin()
        .args(["serve", "--simulator", "--bind", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_SERVICE_NAME", "mcp-under-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let text = read_until(&mut lines, "upstream:");
    let url = banner_field(&text, "MCP endpoint:");
    let sim = banner_simulator_url(&text);
    let by_header = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let by_meta = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let call =
        |tool: &str, arguments: serde_json::Value, meta: Option<String>, header: Option<String>| {
            let mut params = serde_json::json!({"arguments": arguments});
            if let Some(tp) = meta {
                params["_meta"] = serde_json::json!({"traceparent": tp});
            }
            let headers: Vec<(&str, &str)> = header
                .iter()
                .map(|tp| ("traceparent", tp.as_str()))
                .collect();
            let answer = runtime.block_on(crate::mcp_support::call_stateless(
                &url, tool, params, &headers,
            ));
            let reply = answer.json();
            assert_eq!(reply["result"]["isError"], false, "{}", answer.body);
            reply["result"]["structuredContent"].clone()
        };
    let demo_user = serde_json::json!({"userExternalId": "demo-user-01"});
    let header_tp = format!("00-{}-{}-01", by_header.0, by_header.1);
    let listed = call(
        "list_conversations",
        demo_user.clone(),
        None,
        Some(header_tp.clone()),
    );
    call(
        "list_conversations",
        demo_user,
        Some(format!("00-{}-{}-01", by_meta.0, by_meta.1)),
        None,
    );
    // A write, to find its audit record in the log.
    let conversation = listed["conversations"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let body_text = "private words of a customer";
    let send = serde_json::json!({"conversationId": conversation, "idempotencyKey": "audit-1",
        "content": {"type": "text", "text": body_text}});
    call("send_message", send.clone(), None, Some(header_tp));
    // The same key again: answered from the record, which the audit record says.
    call("send_message", send, None, None);

    let child_of = |(trace, parent): (&str, &str)| {
        let spans = receiver.spans.lock().expect("lock");
        spans.iter().any(|s| {
            s.name == "tools/call list_conversations"
                && hex(&s.trace_id) == trace
                && hex(&s.parent_span_id) == parent
        })
    };
    // A header traceparent parents the POST /mcp span, whose child the tool call is.
    let grandchild_of = |(trace, parent): (&str, &str)| {
        let spans = receiver.spans.lock().expect("lock");
        spans.iter().any(|post| {
            post.name == "POST /mcp"
                && hex(&post.trace_id) == trace
                && hex(&post.parent_span_id) == parent
                && spans.iter().any(|s| {
                    s.name == "tools/call list_conversations" && s.parent_span_id == post.span_id
                })
        })
    };
    let mut found = (false, false);
    for _ in 0..200 {
        found = (grandchild_of(by_header), child_of(by_meta));
        if found == (true, true) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(
        found,
        (true, true),
        "tool spans descend from the client's spans (header through POST /mcp, _meta directly)"
    );
    // The upstream request carried the same trace onward.
    let log: serde_json::Value = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{sim}/_sim/requests"))
            .bearer_auth("sim-admin-token")
            .send()
            .await
            .expect("admin")
            .json()
            .await
            .expect("json")
    });
    let _ = child.kill();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    let _ = child.wait();
    // Logs: JSON lines with trace ids; one audit record for the write, without its content.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    let audit: Vec<&serde_json::Value> = lines.iter().filter(|l| l["target"] == "audit").collect();
    assert_eq!(audit.len(), 2, "one audit record per write call: {audit:?}");
    assert_eq!(audit[0]["tool"], "send_message");
    assert_eq!(audit[0]["conversation_id"], conversation.as_str());
    assert_eq!(audit[0]["outcome"], "ok");
    assert_eq!(audit[0]["client_address"], "127.0.0.1", "{:?}", audit[0]);
    assert_eq!(audit[0]["replayed"], false, "a new write");
    assert_eq!(
        audit[1]["replayed"], true,
        "a repeat answered from the record"
    );
    assert_eq!(
        audit[0]["trace_id"], by_header.0,
        "the audit record carries the trace id"
    );
    assert!(audit[0]["span_id"].as_str().is_some_and(|s| s.len() == 16));
    assert!(!stderr.contains(body_text), "no message body in the logs");
    assert!(!stderr.contains("sim-app-secret"), "no secret in the logs");
    let carried: Vec<&str> = log["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["traceparent"].as_str())
        .collect();
    for (trace, _) in [by_header, by_meta] {
        assert!(
            carried
                .iter()
                .any(|tp| tp.starts_with(&format!("00-{trace}-"))),
            "the simulator received trace {trace}: {carried:?}"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn serve_refuses_an_open_endpoint_on_a_non_loopback_address() {
    let out = bin()
        .args(["serve", "--simulator", "--bind", "0.0.0.0:0"])
        .env_remove("ZENDESK_MCP_TOKENS")
        .env_remove("ZENDESK_MCP_TOKENS_FILE")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without bearer tokens"), "{err}");
    assert!(err.contains("ZENDESK_MCP_TOKENS"), "{err}");
    let out = bin()
        .args([
            "serve",
            "--simulator",
            "--bind",
            "127.0.0.1:0",
            "--tools",
            "send_mesage",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tool \"send_mesage\""));
}

#[test]
fn stdio_serves_no_http_mcp_unless_asked_and_bind_takes_a_host_name() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for (extra, mcp_status) in [(None, 404), (Some("--http-mcp"), 200)] {
        let mut args = vec!["stdio", "--simulator", "--bind", "localhost:0"];
        args.extend(extra);
        let mut child = bin()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let text = read_until(&mut lines, "webhooks:");
        let webhooks = banner_field(&text, "webhooks:");
        assert!(webhooks.starts_with("http://127.0.0.1:"), "{webhooks}");
        let base = webhooks.trim_end_matches("/webhooks/sunco").to_owned();
        let answer = runtime.block_on(crate::mcp_support::post_stateless(
            &format!("{base}/mcp"),
            "tools/list",
            None,
            &[],
            crate::mcp_support::stateless_request("tools/list", serde_json::json!({})),
        ));
        let health = runtime.block_on(async {
            reqwest::get(format!("{base}/healthz"))
                .await
                .map(|r| r.status().as_u16())
        });
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(answer.status, mcp_status, "{extra:?}: {}", answer.body);
        assert_eq!(health.ok(), Some(200));
        if extra.is_none() {
            assert!(text.contains("HTTP /mcp is off"), "{text}");
        }
    }
}

#[test]
fn a_failing_otlp_export_is_logged_naming_the_endpoint_and_counted() {
    // A loopback port with nothing listening: every export is refused at once.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    let mut child = bin()
        .args(["serve", "--simulator", "--bind", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "100")
        .env("OTEL_METRIC_EXPORT_TIMEOUT", "500")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    // Kept open to the end, as a terminal would be.
    let mut stdout = BufReader::new(stdout).lines();
    let text = read_until(&mut stdout, "MCP endpoint:");
    let url = banner_field(&text, "MCP endpoint:");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(crate::mcp_support::post_stateless(
        &url,
        "tools/list",
        None,
        &[],
        crate::mcp_support::stateless_request("tools/list", serde_json::json!({})),
    ));
    // Both signals fail within a second or two (the metrics every 100 ms, as configured; the
    // default would be 15 s), and each is logged once, not once per export.
    let stderr = child.stderr.take().expect("stderr");
    let rx = lines_of(stderr);
    let mut failures: Vec<serde_json::Value> = vec![];
    let mut seen: Vec<String> = vec![];
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < until
        && !["traces", "metrics"]
            .iter()
            .all(|s| failures.iter().any(|f| f["signal"] == *s))
    {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            seen.push(line.clone());
            let v: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("not JSON: {line:?} after {seen:#?}"));
            if v["message"]
                .as_str()
                .is_some_and(|m| m.contains("OTLP") && m.contains("failed"))
            {
                failures.push(v);
            }
        }
    }
    // More metric exports fail in the next second, and none of them is logged again.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let later: Vec<String> = rx.try_iter().filter(|l| l.contains("OTLP")).collect();
    let metrics = runtime.block_on(async {
        reqwest::get(url.replace("/mcp", "/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    });
    let _ = child.kill();
    let _ = child.wait();
    for signal in ["traces", "metrics"] {
        let f = failures
            .iter()
            .find(|f| f["signal"] == signal)
            .unwrap_or_else(|| panic!("no failure logged for {signal}: {failures:?}"));
        assert!(
            f["endpoint"]
                .as_str()
                .is_some_and(|e| e.starts_with(&endpoint)),
            "{f}"
        );
        let message = f["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains(" { "),
            "a Debug struct in the log: {message}"
        );
    }
    assert!(
        later.is_empty(),
        "logged again within the minute: {later:?}"
    );
    let count = metrics
        .lines()
        .find(|l| l.starts_with("otel_export_failures_total") && l.contains("signal=\"metrics\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(count >= 2.0, "failed metric exports are counted: {metrics}");
}

/// Sends the signal `name` (`TERM`, `HUP`) to the process `pid`.
pub(crate) fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{name} {pid}");
}

/// Kills the process `pid` should the test panic before it ends the process itself: a failed
/// test leaves no server behind.
struct KillOnPanic(u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

#[test]
fn sigterm_answers_the_calls_in_flight_exports_the_last_spans_and_exits_0() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let receiver = runtime.block_on(crate::telemetry::Receiver::start());
    let mut child = bin()
        .args(["serve", "--simulator", "--bind", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let _reaped = KillOnPanic(child.id());
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let text = read_until(&mut stdout, "upstream:");
    let url = banner_field(&text, "MCP endpoint:");
    let sim = banner_simulator_url(&text);
    let answers = runtime.block_on(async {
        // Every upstream request takes 3 s and each call makes its own (ListIntegrations is not
        // cached), so the 32 calls are in flight (or queued) together at the signal, however
        // slowly they arrive.
        reqwest::Client::new()
            .put(format!("{sim}/_sim/faults"))
            .bearer_auth("sim-admin-token")
            .json(&serde_json::json!({"latencyMs": 3000}))
            .send()
            .await
            .expect("faults");
        let calls = (0..32).map(|_| {
            let body = crate::mcp_support::stateless_request(
                "tools/call",
                serde_json::json!({"name": "list_integrations", "arguments": {}}),
            );
            crate::mcp_support::post_stateless(
                &url,
                "tools/call",
                Some("list_integrations"),
                &[],
                body,
            )
        });
        let pid = child.id();
        let base = url.trim_end_matches("/mcp").to_string();
        let signal = async move {
            // The signal comes once all 32 calls reached the server (being handled, or answered
            // already), however slowly a loaded machine sends them.
            let mut most = 0.0_f64;
            for round in 0.. {
                assert!(
                    round < 1000,
                    "the 32 calls never all reached the server (at most {most})"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let metrics = crate::telemetry::metrics_at(&base).await;
                let active =
                    crate::telemetry::sample_sum(&metrics, "http_server_active_requests", &[]);
                let answered = crate::telemetry::sample_sum(
                    &metrics,
                    "mcp_tool_calls_total",
                    &[("tool", "list_integrations")],
                );
                most = most.max(active + answered);
                if active + answered >= 32.0 {
                    break;
                }
            }
            signal(pid, "TERM");
        };
        let (answers, ()) = tokio::join!(futures::future::join_all(calls), signal);
        answers
    });
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.json()["result"]["isError"], false, "{}", a.body);
    }
    // The spans of those calls were exported on the way out (the batch delay is a minute).
    let names: Vec<String> = receiver
        .spans
        .lock()
        .expect("lock")
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert!(
        names.iter().any(|n| n == "tools/call list_integrations"),
        "{names:?}"
    );
}

#[test]
fn a_bad_redis_url_stops_serve_with_one_line_that_never_repeats_the_password() {
    for (flag, env) in [
        (Some("http://user:s3cret-pw@cache.internal"), None),
        (None, Some("redis://:s3cret-pw@[::zz]")),
        (
            Some("redis+sentinel://:s3cret-pw@sentinel.internal:notaport/svc"),
            None,
        ),
        (Some("redis+sentinel://:s3cret-pw@sentinel.internal"), None),
    ] {
        let mut cmd = bin();
        cmd.args(["serve", "--simulator", "--bind", "127.0.0.1:0"]);
        if let Some(url) = flag {
            cmd.args(["--redis-url", url]);
        }
        if let Some(url) = env {
            cmd.env("ZENDESK_MCP_REDIS_URL", url);
        }
        let out = cmd.output().expect("run");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        let name = if flag.is_some() {
            "--redis-url"
        } else {
            "ZENDESK_MCP_REDIS_URL"
        };
        assert!(err.starts_with(&format!("serve: {name}: ")), "{err}");
        assert!(!err.contains("s3cret-pw"), "{err}");
    }
}

#[test]
fn serve_dry_run_says_so_in_the_banner_and_sends_nothing() {
    let args = ["--dry-run", "--index-conversations", "50"].map(std::ffi::OsStr::new);
    let (mut child, text, _lines) = serve_simulator("127.0.0.1:0", &args, Stdio::null());
    let url = banner_field(&text, "MCP endpoint:");
    assert!(
        banner_field(&text, "writes:").starts_with("dry run"),
        "{text}"
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let call = |name: &str, arguments: serde_json::Value| {
        runtime
            .block_on(crate::mcp_support::call_stateless(
                &url,
                name,
                serde_json::json!({"arguments": arguments}),
                &[],
            ))
            .json()["result"]["structuredContent"]
            .clone()
    };
    let listed = call(
        "list_conversations",
        serde_json::json!({"userExternalId": "demo-user-01"}),
    );
    let conv = listed["conversations"][0]["id"]
        .as_str()
        .expect("a demo conversation: reads are real")
        .to_owned();
    let sent = call(
        "send_message",
        serde_json::json!({"conversationId": conv, "content": {"type": "text", "text": "hi"}}),
    );
    let page = call(
        "list_messages",
        serde_json::json!({"conversationId": conv, "limit": 100}),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(sent["dryRun"], true, "{sent}");
    assert_eq!(sent["request"]["body"]["content"]["text"], "hi", "{sent}");
    assert!(
        !page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["content"]["text"] == "hi"),
        "nothing was sent"
    );
}

#[test]
fn write_settings_that_cannot_work_are_refused_at_start() {
    for (args, says) in [
        (
            vec!["--switchboard-integration", " "],
            "--switchboard-integration",
        ),
        (vec!["--index-conversations", "0"], "--index-conversations"),
        (vec!["--index-max-age-hours", "0"], "--index-max-age-hours"),
    ] {
        refused_at_start(&args, says);
    }
}

#[test]
fn oauth_settings_are_checked_at_start() {
    for (args, says) in [
        (
            vec!["--oauth-issuer", "https://auth.example.com"],
            "--public-url",
        ),
        (
            vec!["--public-url", "https://mcp.example.com/mcp"],
            "--oauth-issuer",
        ),
        (
            vec![
                "--oauth-issuer",
                "http://auth.example.com",
                "--public-url",
                "https://mcp.example.com/mcp",
            ],
            "https",
        ),
        (
            vec![
                "--oauth-issuer",
                "https://auth.example.com",
                "--public-url",
                "https://mcp.example.com/",
            ],
            "/mcp",
        ),
        (
            vec!["--oauth-audience", "api://zendesk-messaging-mcp"],
            "--oauth-issuer",
        ),
        (
            vec![
                "--oauth-issuer",
                "https://auth.example.com",
                "--public-url",
                "https://mcp.example.com/mcp",
                "--oauth-audience",
                "api://a, ",
            ],
            "--oauth-audience",
        ),
    ] {
        let out = bin()
            .args(["serve", "--simulator", "--bind", "127.0.0.1:0"])
            .args(&args)
            .env_remove("ZENDESK_MCP_OAUTH_ISSUER")
            .env_remove("ZENDESK_MCP_PUBLIC_URL")
            .env_remove("ZENDESK_MCP_OAUTH_AUDIENCE")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // OAuth on a non-loopback bind needs no --allow-unauthenticated: /mcp is never open.
    let args = [
        "--oauth-issuer",
        "https://auth.example.com",
        "--public-url",
        "https://mcp.example.com/mcp",
    ]
    .map(std::ffi::OsStr::new);
    let (mut child, banner, _lines) = serve_simulator("0.0.0.0:0", &args, Stdio::null());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        banner.contains("OAuth:         access tokens from https://auth.example.com for https://mcp.example.com/mcp"),
        "{banner}"
    );
    assert!(banner.contains("MCP endpoint:"), "{banner}");
}

#[test]
fn server_flags_given_blank_are_refused_at_start() {
    for (args, says) in [
        (vec!["--tokens-file", ""], "--tokens-file"),
        (vec!["--redis-url", " "], "--redis-url"),
        (vec!["--tools", ""], "--tools"),
    ] {
        refused_at_start(&args, says);
    }
}

/// A tokens file that names nobody, or gives two profiles one secret, stops the server: the
/// first would leave `/mcp` open, the second would let one caller act as either profile.
#[test]
fn a_tokens_file_without_tokens_or_with_a_shared_secret_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("zmcp-cli-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "# nobody yet\n").expect("write");
    let shared = dir.join("shared.toml");
    std::fs::write(
        &shared,
        "[[tokens]]\nname = \"reader\"\ntoken = \"same-secret-0123456789\"\naccess = \"read-only\"\n\n\
         [[tokens]]\nname = \"writer\"\ntoken = \"same-secret-0123456789\"\n",
    )
    .expect("write");
    for (file, says) in [(&empty, "holds no [[tokens]]"), (&shared, "same secret")] {
        let path = file.display().to_string();
        refused_at_start(&["--tokens-file", &path], says);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve --simulator` with `args` exits 2 before serving, saying `says` on stderr.
fn refused_at_start(args: &[&str], says: &str) {
    let (status, stderr) = serve_until_it_stops(args);
    assert_eq!(status, Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
}

/// `serve --simulator` on a free loopback port with `args`, which must stop by itself: its
/// exit status and what it wrote on stderr.
fn serve_until_it_stops(args: &[&str]) -> (Option<i32>, String) {
    let out = bin()
        .args(["serve", "--simulator", "--bind", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sigterm_ends_waiting_claims_at_once_answered_and_exits_0() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (mut child, text, _lines) = serve_simulator("127.0.0.1:0", &[], Stdio::null());
    let _reaped = KillOnPanic(child.id());
    let url = banner_field(&text, "MCP endpoint:");
    let base = url.trim_end_matches("/mcp").to_string();
    let answer = runtime.block_on(async {
        let body = crate::mcp_support::stateless_request(
            "tools/call",
            serde_json::json!({"name": "claim_conversation", "arguments": {"waitSeconds": 50}}),
        );
        let wait = crate::mcp_support::post_stateless(
            &url,
            "tools/call",
            Some("claim_conversation"),
            &[],
            body,
        );
        let pid = child.id();
        let signal = async move {
            // Once the call waits (the gauge says so), the replica is told to stop.
            for round in 0.. {
                assert!(round < 500, "the claim never waited");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let metrics = crate::telemetry::metrics_at(&base).await;
                if crate::telemetry::sample(&metrics, "mcp_claims_waiting", &[]) == Some(1.0) {
                    break;
                }
            }
            signal(pid, "TERM");
        };
        let started = std::time::Instant::now();
        let (answer, ()) = tokio::join!(wait, signal);
        (answer, started.elapsed())
    });
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
    let (answer, took) = answer;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let result = &answer.json()["result"]["structuredContent"];
    assert_eq!(result["claim"], serde_json::Value::Null, "{}", answer.body);
    assert_eq!(result["reason"], "shutting_down", "{}", answer.body);
    assert!(
        took < std::time::Duration::from_secs(20),
        "the wait ended at the signal, not after its 50 s: {took:?}"
    );
}

#[test]
fn the_banner_says_whom_business_messages_may_go_to() {
    for (flags, says) in [
        (
            &[][..],
            "the switchboard's default integration is in control",
        ),
        (
            &["--switchboard-integration", "bot"][..],
            "\"bot\" is in control",
        ),
        (&["--no-send-guard"][..], "the send guard is OFF"),
    ] {
        let args: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
        let (mut child, text, _lines) = serve_simulator("127.0.0.1:0", &args, Stdio::null());
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            banner_field(&text, "writes:").contains(says),
            "{flags:?}: {text}"
        );
    }
}

/// Log lines written to a file or a pipe carry no colour codes, in either format; piped, the
/// default is JSON (a terminal gets text).
#[test]
fn log_lines_into_a_pipe_carry_no_colour_codes() {
    for format in [None, Some("text")] {
        let mut args: Vec<&std::ffi::OsStr> = vec![];
        if let Some(f) = format {
            args.extend(["--log-format", f].map(std::ffi::OsStr::new));
        }
        let (mut child, _banner, _lines) = serve_simulator("127.0.0.1:0", &args, Stdio::piped());
        let _reaped = KillOnPanic(child.id());
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let first = lines.next().expect("a log line").expect("readable");
        let _ = child.kill();
        let _ = child.wait();
        assert!(!first.contains('\u{1b}'), "{format:?}: {first:?}");
        match format {
            None => assert!(
                first.starts_with('{'),
                "JSON by default when piped: {first}"
            ),
            Some(_) => assert!(first.contains("INFO"), "text: {first}"),
        }
    }
}

/// A token that speaks for a switchboard integration the switchboard does not have is named at
/// start (once the switchboard is read), not at its first send.
#[test]
fn a_token_speaking_for_an_unknown_integration_is_warned_of_at_start() {
    let dir = std::env::temp_dir().join(format!("zmcp-cli-misnamed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tokens.toml");
    std::fs::write(
        &file,
        "[[tokens]]\nname = \"bot\"\ntoken = \"misnamed-bot-token-0123456789\"\nswitchboard_integration = \"bott\"\n",
    )
    .expect("write");
    let path = file.display().to_string();
    let args = ["--tokens-file", path.as_str()].map(std::ffi::OsStr::new);
    let (mut child, _banner, _lines) = serve_simulator("127.0.0.1:0", &args, Stdio::piped());
    let _reaped = KillOnPanic(child.id());
    let logged = stderr_until(&mut child, &["\\\"bott\\\"", "invalid_target"]);
    let warned = logged
        .lines()
        .find(|l| l.contains("\\\"bott\\\"") && l.contains("invalid_target"));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let warned = warned.expect("one warning naming the integration and what follows");
    assert!(warned.contains("token \\\"bot\\\""), "{warned}");
}

/// A Redis that cannot be used at start (a host that does not resolve, a socket that is not
/// there) stops `serve` with exit status 1 and a line that says what to check, not "retry".
#[test]
fn a_redis_that_cannot_be_used_stops_serve_saying_what_to_fix() {
    for url in [
        "redis://no-such-host.invalid:6379",
        "unix:///nonexistent/zmcp/r.sock",
    ] {
        let (status, err) = serve_until_it_stops(&["--redis-url", url]);
        assert_eq!(status, Some(1), "{url}: {err}");
        assert!(err.contains("check --redis-url"), "{url}: {err}");
        assert!(!err.contains("retry"), "{url}: {err}");
    }
}

/// `--metrics-bind` serves `/metrics` on an address of its own, named in the banner, and no
/// longer beside `/mcp`.
#[test]
fn metrics_on_an_address_of_their_own() {
    let args = ["--metrics-bind", "127.0.0.1:0"].map(std::ffi::OsStr::new);
    let (mut child, banner, _lines) = serve_simulator("127.0.0.1:0", &args, Stdio::null());
    let _reaped = KillOnPanic(child.id());
    let metrics = banner_field(&banner, "metrics:");
    let mcp = banner_field(&banner, "MCP endpoint:");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (own, beside) = runtime.block_on(async {
        let own = reqwest::get(&metrics).await.expect("metrics");
        let own = (own.status().as_u16(), own.text().await.unwrap_or_default());
        let beside = reqwest::get(mcp.replace("/mcp", "/metrics"))
            .await
            .expect("main port");
        (own, beside.status().as_u16())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(own.0, 200);
    assert!(own.1.contains("mcp_server_degraded"), "{}", own.1);
    assert_eq!(beside, 404);
}

/// The lines `read` gives (a child's stdout or stderr), as a thread reading them sends them; the
/// thread ends with the stream or when the receiver is dropped.
pub(crate) fn lines_of(
    read: impl std::io::Read + Send + 'static,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(read).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads a process's stderr lines until every one of `wanted` has appeared in some line (10 s
/// at most); returns what was read.
pub(crate) fn stderr_until(child: &mut std::process::Child, wanted: &[&str]) -> String {
    let stderr = child.stderr.take().expect("stderr");
    let rx = lines_of(stderr);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = String::new();
    while !wanted.iter().all(|w| seen.contains(w)) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => panic!("never logged all of {wanted:?}:\n{seen}"),
        }
    }
    seen
}
