//! A server under test: the demo simulator upstream (its webhooks aimed at the server), the
//! server on a free loopback port, and an MCP client connected over Streamable HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, NumberOrString, ProgressNotificationParam,
    ProgressToken, RequestMetaObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::net::TcpListener;

use zendesk_messaging_mcp::actors::SupervisorSettings;
use zendesk_messaging_mcp::server::{self, HttpOptions, RunningServer, WEBHOOK_PATH};

use crate::support::{TestSim, with_webhooks};

/// A client that records the progress notifications it receives, and counts the
/// `notifications/tools/list_changed`.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub tool_list_changes: Arc<std::sync::atomic::AtomicUsize>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Ok(mut p) = self.progress.lock() {
            p.push(params);
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tool_list_changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

pub struct TestServer {
    pub sim: TestSim,
    pub server: RunningServer,
    pub client: RunningService<RoleClient, Recorder>,
    pub recorder: Recorder,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_full(
            SupervisorSettings::default(),
            HttpOptions::default(),
            None,
            |_| {},
        )
        .await
    }

    /// Starts with these actor settings and a simulator config adjusted by `tweak`, and without
    /// the periodic webhook check, whose upstream calls would blur the upstream counts these
    /// tests make.
    pub async fn start_with(
        settings: SupervisorSettings,
        tweak: impl FnOnce(&mut zendesk_messaging_mcp::simulator::SimConfig),
    ) -> Self {
        let http = HttpOptions {
            webhook_check: None,
            ..Default::default()
        };
        Self::start_full(settings, http, None, tweak).await
    }

    /// Starts with access rules; the test client presents `token`.
    pub async fn start_full(
        settings: SupervisorSettings,
        http: HttpOptions,
        token: Option<&str>,
        tweak: impl FnOnce(&mut zendesk_messaging_mcp::simulator::SimConfig),
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_on(listener, settings, http, token, tweak).await
    }

    /// [`Self::start_full`] on a listener bound already (when the access rules need its port).
    pub async fn start_on(
        listener: TcpListener,
        settings: SupervisorSettings,
        http: HttpOptions,
        token: Option<&str>,
        tweak: impl FnOnce(&mut zendesk_messaging_mcp::simulator::SimConfig),
    ) -> Self {
        crate::support::init_tracing();
        let addr = listener.local_addr().expect("addr");
        let mut sim_config = with_webhooks(&format!("http://{addr}{WEBHOOK_PATH}"));
        tweak(&mut sim_config);
        let sim = TestSim::start(sim_config).await;
        let config = server::simulator_config(&sim.base).expect("config");
        let server = server::serve_with(listener, &config, settings, http)
            .await
            .expect("serve");
        let recorder = Recorder::default();
        let client = Self::connect_as(&server, recorder.clone(), token).await;
        Self {
            sim,
            server,
            client,
            recorder,
        }
    }

    pub async fn connect(
        server: &RunningServer,
        handler: Recorder,
    ) -> RunningService<RoleClient, Recorder> {
        Self::connect_as(server, handler, None).await
    }

    /// A client that presents `token` as its bearer token.
    pub async fn connect_as(
        server: &RunningServer,
        handler: Recorder,
        token: Option<&str>,
    ) -> RunningService<RoleClient, Recorder> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(server.mcp_url());
        if let Some(token) = token {
            config = config.auth_header(token);
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        handler.serve(transport).await.expect("MCP client connects")
    }

    /// The id of a demo user's conversation, through `list_conversations`.
    pub async fn conversation_of(&self, external_id: &str) -> String {
        let r = self
            .ok(
                "list_conversations",
                serde_json::json!({"userExternalId": external_id}),
            )
            .await;
        r["conversations"][0]["id"]
            .as_str()
            .expect("conversation id")
            .to_owned()
    }

    /// Sends a form to demo-user-08, whose Messenger channel renders no forms, so the webhook
    /// will report a delivery failure. Returns the conversation and message ids.
    pub async fn send_undeliverable_form(&self) -> (String, String) {
        let conv = self.conversation_of("demo-user-08").await;
        let sent = self
            .ok(
                "send_message",
                serde_json::json!({"conversationId": conv, "content": {"type": "form", "fields": [
                    {"type": "email", "name": "email", "label": "Your email"}]}}),
            )
            .await;
        let mid = sent["messages"][0]["id"].as_str().expect("id").to_owned();
        (conv, mid)
    }

    /// Waits (briefly, in real time: the webhook is asynchronous) until `get_delivery_status`
    /// of `message_id` shows `state`; returns that answer.
    pub async fn delivery_state(&self, message_id: &str, state: &str) -> Value {
        let args = serde_json::json!({"messageId": message_id});
        let reached = std::sync::Mutex::new(Value::Null);
        crate::support::eventually(&format!("message {message_id} is {state}"), || async {
            let v = self.ok("get_delivery_status", args.clone()).await;
            let done = v["state"] == state;
            *reached.lock().expect("lock") = v;
            done
        })
        .await;
        reached.into_inner().expect("lock")
    }

    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        self.call_with(tool, args, None).await
    }

    pub async fn call_with(
        &self,
        tool: &str,
        args: Value,
        progress: Option<&str>,
    ) -> CallToolResult {
        call_tool(&self.client, tool, args, progress).await
    }

    /// Calls a tool that must succeed; returns its structured content, after checking that the
    /// text block carries the same JSON.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args).await;
        structured(tool, &r)
    }

    /// Calls a tool that must fail as a tool error; returns the error JSON.
    pub async fn err(&self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args).await;
        tool_error(tool, &r)
    }
}

/// A `tools/call` of `tool` with `args` (an object), and a progress token when given.
fn tool_params(tool: &str, args: Value, progress: Option<&str>) -> CallToolRequestParams {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(map);
    if let Some(token) = progress {
        let mut meta = RequestMetaObject::default();
        meta.set_progress_token(ProgressToken(NumberOrString::String(token.into())));
        params.meta = Some(meta);
    }
    params
}

/// Starts a call of `tool` the test may cancel (`handle.cancel`), as [`call_tool`] would send it.
pub async fn start_cancellable_call(
    client: &RunningService<RoleClient, Recorder>,
    tool: &str,
    args: Value,
    progress: Option<&str>,
) -> rmcp::service::RequestHandle<RoleClient> {
    let params = tool_params(tool, args, progress);
    client
        .peer()
        .send_cancellable_request(
            rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(params)),
            rmcp::service::PeerRequestOptions::no_options(),
        )
        .await
        .expect("sent")
}

/// Calls `tool` through `client` (with a progress token when given); fails the test on a
/// protocol error or after 60 s.
pub async fn call_tool(
    client: &RunningService<RoleClient, Recorder>,
    tool: &str,
    args: Value,
    progress: Option<&str>,
) -> CallToolResult {
    let params = tool_params(tool, args, progress);
    tokio::time::timeout(Duration::from_secs(60), client.call_tool(params))
        .await
        .unwrap_or_else(|_| panic!("{tool} hung"))
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

pub fn structured(tool: &str, r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "{tool} failed: {}", text_of(r));
    let s = r
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("{tool}: no structuredContent"));
    let text: Value = serde_json::from_str(&text_of(r)).expect("text block is JSON");
    assert_eq!(text, s, "{tool}: text block and structuredContent differ");
    s
}

pub fn tool_error(tool: &str, r: &CallToolResult) -> Value {
    assert_eq!(
        r.is_error,
        Some(true),
        "{tool} should have failed: {}",
        text_of(r)
    );
    let text = text_of(r);
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

pub fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `/mcp` answered to a raw HTTP request.
pub struct HttpAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl HttpAnswer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The JSON-RPC message in the body, plain JSON or the data of the last SSE event.
    pub fn json(&self) -> Value {
        let text = &self.body;
        let start = text
            .find('{')
            .unwrap_or_else(|| panic!("no JSON in {text}"));
        let end = text
            .rfind('}')
            .unwrap_or_else(|| panic!("no JSON in {text}"));
        serde_json::from_str(&text[start..=end]).unwrap_or_else(|_| panic!("not JSON-RPC: {text}"))
    }
}

/// A JSON-RPC request of the stateless (2026-07-28) protocol: `method` with `params`, whose
/// `_meta` gains the protocol version and client capabilities that protocol requires.
pub fn stateless_request(method: &str, mut params: Value) -> String {
    let required = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    if let (Some(p), Some(req)) = (params.as_object_mut(), required.as_object()) {
        let meta = p.entry("_meta").or_insert_with(|| serde_json::json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.extend(req.clone());
        }
    }
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

/// A stateless `tools/call` of `tool` with `params` (`name` is set; `arguments`, `_meta` as
/// given) and the `extra` headers.
pub async fn call_stateless(
    url: &str,
    tool: &str,
    mut params: Value,
    extra: &[(&str, &str)],
) -> HttpAnswer {
    params["name"] = Value::from(tool);
    let body = stateless_request("tools/call", params);
    post_stateless(url, "tools/call", Some(tool), extra, body).await
}

/// POSTs the JSON-RPC text `body` to `url` with `accept` (none when `None`) and the `extra`
/// headers, as any HTTP client would.
/// Opens a 2025-11-25 session over plain HTTP as a client does (`initialize`, then
/// `notifications/initialized`), with `extra` headers (the bearer token, say); its
/// `Mcp-Session-Id`.
pub async fn open_session(url: &str, extra: &[(&str, &str)]) -> String {
    let accept = Some("application/json, text/event-stream");
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw-session", "version": "1"}}});
    let started = post_json(url, accept, extra, init.to_string()).await;
    assert_eq!(started.status, 200, "{}", started.body);
    let session = started
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_owned();
    let mut headers = extra.to_vec();
    headers.push(("mcp-session-id", &session));
    headers.push(("mcp-protocol-version", "2025-11-25"));
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let noted = post_json(url, accept, &headers, initialized.to_string()).await;
    assert_eq!(noted.status, 202, "{}", noted.body);
    session
}

pub async fn post_json(
    url: &str,
    accept: Option<&str>,
    extra: &[(&str, &str)],
    body: String,
) -> HttpAnswer {
    try_post_json(url, accept, extra, body).await.expect("post")
}

/// [`post_json`], answering `Err` when no answer came (the server died, the connection broke).
pub async fn try_post_json(
    url: &str,
    accept: Option<&str>,
    extra: &[(&str, &str)],
    body: String,
) -> Result<HttpAnswer, String> {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json");
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req
        .body(body)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    Ok(HttpAnswer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap_or_default(),
    })
}

/// POSTs `body` to `url` with the headers of a stateless request of `method` (naming `tool`
/// for `tools/call`) and any `extra` ones.
pub async fn post_stateless(
    url: &str,
    method: &str,
    tool: Option<&str>,
    extra: &[(&str, &str)],
    body: String,
) -> HttpAnswer {
    try_post_stateless(url, method, tool, extra, body)
        .await
        .expect("post")
}

/// [`post_stateless`], answering `Err` when no answer came.
pub async fn try_post_stateless(
    url: &str,
    method: &str,
    tool: Option<&str>,
    extra: &[(&str, &str)],
    body: String,
) -> Result<HttpAnswer, String> {
    let mut headers = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(tool) = tool {
        headers.push(("mcp-name", tool));
    }
    headers.extend_from_slice(extra);
    try_post_json(
        url,
        Some("application/json, text/event-stream"),
        &headers,
        body,
    )
    .await
}

/// The tool names of a `tools/list` JSON-RPC answer.
pub fn tool_names_of(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The access rules of a tokens file holding `text` (written to a scratch file and read as
/// `--tokens-file` reads it).
pub fn access_from_tokens_file(text: &str) -> zendesk_messaging_mcp::access::AccessPolicy {
    use std::hash::{BuildHasher, RandomState};
    let dir = std::env::temp_dir().join(format!(
        "zmcp-tokens-{}-{:x}",
        std::process::id(),
        RandomState::new().hash_one(std::time::SystemTime::now())
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tokens.toml");
    std::fs::write(&file, text).expect("tokens file");
    let access = zendesk_messaging_mcp::access::AccessPolicy::build(
        None,
        Some(&file),
        false,
        None,
        &zendesk_messaging_mcp::mcp::ZendeskMcp::tool_names(),
    )
    .expect("policy");
    let _ = std::fs::remove_dir_all(&dir);
    access
}
