//! The command line, as a new user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> Command {
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

/// Reads lines until one contains `needle`; returns everything read.
fn read_until(lines: &mut impl Iterator<Item = std::io::Result<String>>, needle: &str) -> String {
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
    let url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("MCP endpoint:"))
        .map(|u| u.trim().to_owned())
        .unwrap_or_else(|| panic!("no MCP endpoint line in\n{text}"));
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );
    assert!(text.contains("\"mcpServers\""), "{text}");
    assert!(text.contains(&format!("\"url\": \"{url}\"")), "{text}");
    assert!(text.contains("the embedded simulator"), "{text}");
    // A stateless (2026-07-28) tools/list over plain HTTP.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let body = runtime.block_on(async {
        let http = reqwest::Client::new();
        http.post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .body(
                serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {}
                }}})
                .to_string(),
            )
            .send()
            .await
            .expect("post")
            .text()
            .await
            .expect("body")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(body.contains("\"send_message\""), "{body}");
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
