//! Browser clients: a page on another origin runs the official TypeScript SDK's client against
//! `/mcp` in headless Chromium (Debian `chromium`; the SDK bundled for the browser by
//! `.ci/install-browser-client` under `target/browser`). The page reads what CORS lets it read:
//! the 401's challenge, the session id, the tools and a tool's answer.

use std::process::{Command, Stdio};
use std::time::Duration;

use axum::response::{Html, IntoResponse};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use zendesk_messaging_mcp::actors::SupervisorSettings;

use crate::mcp_support::TestServer;

const TOKEN: &str = "browser-page-token-0123456789";

/// The bundled client, or `None` (the test skips) when it or Chromium is not installed outside
/// CI.
fn installed() -> Option<String> {
    let bundle = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser/client.js");
    let chromium = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match (std::fs::read_to_string(&bundle), chromium) {
        (Ok(js), true) => Some(js),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs Chromium and the bundled browser client: bash .ci/install-browser-client"
            );
            eprintln!(
                "skipped: Chromium or target/browser/client.js missing (bash .ci/install-browser-client)"
            );
            None
        }
    }
}

/// Serves the page (and the bundled client) on a loopback port of its own: another origin
/// than the server's. Its origin, and where what the page posts to `/result` arrives.
async fn serve_page(js: String) -> (String, tokio::sync::mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, results) = tokio::sync::mpsc::channel(4);
    let page =
        Html("<!doctype html><html><body><script src=\"/client.js\"></script></body></html>");
    let app = axum::Router::new()
        .route("/", axum::routing::get(move || async move { page }))
        .route(
            "/client.js",
            axum::routing::get(move || async move {
                ([("content-type", "text/javascript")], js).into_response()
            }),
        )
        .route(
            "/result",
            axum::routing::post(move |body: String| async move {
                let _ = tx
                    .send(serde_json::from_str(&body).unwrap_or(Value::String(body)))
                    .await;
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (origin, results)
}

/// Loads `url` in headless Chromium and answers what the page posted, then stops Chromium.
async fn load(url: String, results: &mut tokio::sync::mpsc::Receiver<Value>) -> Value {
    let profile = std::env::temp_dir().join(format!(
        "zmcp-chromium-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let mut chromium = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("Chromium starts");
    let posted = tokio::time::timeout(Duration::from_secs(60), results.recv()).await;
    let _ = chromium.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    match posted {
        Ok(Some(r)) => r,
        _ => {
            let mut stderr = String::new();
            if let Some(mut e) = chromium.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut stderr).await;
            }
            panic!("the page posted no result within 60 s: {stderr}")
        }
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// A server with one token, allowing `origins`.
async fn server(origins: Vec<String>) -> TestServer {
    let access = crate::mcp_support::access_from_tokens_file(&format!(
        "[[tokens]]\nname = \"page\"\ntoken = \"{TOKEN}\"\n"
    ));
    let http = zendesk_messaging_mcp::server::HttpOptions {
        access: std::sync::Arc::new(access),
        allowed_origins: origins,
        ..Default::default()
    };
    TestServer::start_full(SupervisorSettings::default(), http, Some(TOKEN), |_| {}).await
}

fn page_url(origin: &str, t: &TestServer) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("mcp", &t.server.mcp_url())
        .append_pair("token", TOKEN)
        .finish();
    format!("{origin}/?{query}")
}

#[tokio::test]
async fn a_page_on_an_allowed_origin_runs_the_typescript_sdk_against_mcp() {
    let Some(js) = installed() else {
        return;
    };
    let (origin, mut results) = serve_page(js).await;
    let t = server(vec![origin.clone()]).await;
    let r = load(page_url(&origin, &t), &mut results).await;
    assert_eq!(r["error"], Value::Null, "{r}");
    // The 401 and its challenge reach the page: it learns it needs a token.
    assert_eq!(r["status"], 401, "{r}");
    assert!(
        r["challenge"]
            .as_str()
            .is_some_and(|c| c.starts_with("Bearer")),
        "{r}"
    );
    // The SDK read the session id, listed the tools and called one.
    assert!(
        r["sessionId"].as_str().is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    assert!(
        r["tools"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("send_message"))),
        "{r}"
    );
    assert!(r["switchboards"].is_object(), "{r}");
    assert_eq!(r["terminated"], true, "{r}");
}

#[tokio::test]
async fn a_page_on_another_origin_is_kept_from_mcp_by_the_browser() {
    let Some(js) = installed() else {
        return;
    };
    let (origin, mut results) = serve_page(js).await;
    let t = server(vec!["https://app.example.com".into()]).await;
    let r = load(page_url(&origin, &t), &mut results).await;
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "{r}"
    );
}

/// What a browser asks before and with each request, checked header by header: the preflight is
/// answered before authentication with the MCP headers allowed; a 401 carries the allowed
/// origin and exposes its challenge; an origin not allowed gets no CORS header at all.
#[tokio::test]
async fn preflights_and_answers_carry_cors_for_allowed_origins_only() {
    const PAGE: &str = "https://inspector.example.com";
    let t = server(vec![PAGE.into()]).await;
    let http = reqwest::Client::new();
    let url = t.server.mcp_url();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,mcp-protocol-version,mcp-session-id,last-event-id,mcp-method,mcp-name",
            )
            .send()
    };
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let r = preflight(PAGE).await.expect("preflight");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(header(&r, "access-control-allow-origin"), PAGE);
    let allowed = header(&r, "access-control-allow-headers");
    for h in [
        "authorization",
        "content-type",
        "accept",
        "mcp-protocol-version",
        "mcp-session-id",
        "last-event-id",
        "mcp-method",
        "mcp-name",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert!(header(&r, "access-control-allow-methods").contains("delete"));
    let r = preflight("https://evil.example").await.expect("preflight");
    assert_eq!(header(&r, "access-control-allow-origin"), "");

    // The 401 without a token: readable by the allowed page, challenge exposed.
    let r = http
        .post(&url)
        .header("origin", PAGE)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(crate::mcp_support::stateless_request(
            "tools/list",
            json!({}),
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin"), PAGE);
    let exposed = header(&r, "access-control-expose-headers");
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"),
        "{exposed}"
    );

    // The public metadata answers any origin (here 404: no OAuth, still readable).
    let r = http
        .get(format!(
            "http://{}/.well-known/oauth-protected-resource",
            t.server.addr
        ))
        .header("origin", "https://anywhere.example")
        .send()
        .await
        .expect("metadata");
    assert_eq!(header(&r, "access-control-allow-origin"), "*");
}
