//! Test helpers: a simulator on a free loopback port, an HTTP client whose every answer is
//! checked against the official spec, and a webhook receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::Value;
use tokio::sync::mpsc;

use zendesk_messaging_mcp::secret::Secret;
use zendesk_messaging_mcp::simulator::seed::{self, Seed};
use zendesk_messaging_mcp::simulator::{self, RunningSimulator, SimConfig};
use zendesk_messaging_mcp::sunco::auth::{Scope, basic_header, bearer_header, mint_jwt};

use super::spec::spec;

pub const APP: &str = seed::DEFAULT_APP_ID;

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    AppBasic,
    AppJwt,
    AccountBasic,
    AccountJwt,
    IntegrationBasic,
    IntegrationJwt,
    None,
    Raw(String),
}

impl Auth {
    fn header(&self) -> Option<String> {
        let basic = |key_id: &str, secret: &str| {
            basic_header(key_id, &Secret::new(secret))
                .expose()
                .to_owned()
        };
        let jwt = |key_id: &str, secret: &str, scope| {
            let t = mint_jwt(key_id, &Secret::new(secret), scope, None).expect("mint");
            bearer_header(&t).expose().to_owned()
        };
        use seed::{
            ACCOUNT_KEY_ID as ACT, ACCOUNT_KEY_SECRET as ACT_SECRET, DEFAULT_KEY_ID as APP_KEY,
            DEFAULT_KEY_SECRET as APP_SECRET, INTEGRATION_KEY_ID as INT,
            INTEGRATION_KEY_SECRET as INT_SECRET,
        };
        match self {
            Auth::AppBasic => Some(basic(APP_KEY, APP_SECRET)),
            Auth::AppJwt => Some(jwt(APP_KEY, APP_SECRET, Scope::App)),
            Auth::AccountBasic => Some(basic(ACT, ACT_SECRET)),
            Auth::AccountJwt => Some(jwt(ACT, ACT_SECRET, Scope::Account)),
            Auth::IntegrationBasic => Some(basic(INT, INT_SECRET)),
            Auth::IntegrationJwt => Some(jwt(INT, INT_SECRET, Scope::Integration)),
            Auth::None => None,
            Auth::Raw(h) => Some(h.clone()),
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Resp {
    /// The first error's code.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["code"].as_str().unwrap_or_default()
    }
    pub fn title(&self) -> &str {
        self.body["errors"][0]["title"].as_str().unwrap_or_default()
    }
    pub fn titles(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["title"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub struct TestSim {
    /// Kept so the simulator lives as long as the test.
    _running: RunningSimulator,
    pub base: String,
    http: reqwest::Client,
}

impl TestSim {
    pub async fn demo() -> Self {
        Self::start(SimConfig::local(Seed::Demo)).await
    }

    pub async fn start(config: SimConfig) -> Self {
        init_tracing();
        let running = simulator::start(config).await.expect("start simulator");
        let base = running.base_url();
        Self {
            _running: running,
            base,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
        }
    }

    /// `/v2/apps/{APP}` + `rest`.
    pub fn app(rest: &str) -> String {
        format!("/v2/apps/{APP}{rest}")
    }

    /// A request whose answer must match the spec.
    pub async fn call(
        &self,
        auth: Auth,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Resp {
        let raw = body.map(|b| serde_json::to_vec(&b).expect("json"));
        self.send(auth, method, path_and_query, raw, "application/json")
            .await
    }

    pub async fn send(
        &self,
        auth: Auth,
        method: &str,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Resp {
        let resp = self
            .try_send(auth, method, path_and_query, body, content_type)
            .await
            .expect("request failed");
        let path = path_and_query.split('?').next().unwrap_or_default();
        if let Err(e) = spec().check_response(method, path, resp.status, &resp.body) {
            panic!("{e}");
        }
        resp
    }

    /// Sends without checking the answer; errors (dropped connections) are returned.
    pub async fn try_send(
        &self,
        auth: Auth,
        method: &str,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Result<Resp, reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path_and_query}", self.base));
        if let Some(h) = auth.header() {
            req = req.header("Authorization", h);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", content_type).body(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Resp {
            status,
            body,
            headers,
        })
    }

    pub async fn get(&self, pq: &str) -> Resp {
        self.call(Auth::AppBasic, "GET", pq, None).await
    }
    pub async fn post(&self, pq: &str, body: Value) -> Resp {
        self.call(Auth::AppBasic, "POST", pq, Some(body)).await
    }
    pub async fn patch(&self, pq: &str, body: Value) -> Resp {
        self.call(Auth::AppBasic, "PATCH", pq, Some(body)).await
    }
    pub async fn delete(&self, pq: &str) -> Resp {
        self.call(Auth::AppBasic, "DELETE", pq, None).await
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(
                "Authorization",
                format!("Bearer {}", simulator::DEFAULT_ADMIN_TOKEN),
            );
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin request");
        assert!(
            resp.status().is_success(),
            "admin {path}: {}",
            resp.status()
        );
        resp.json().await.expect("admin json")
    }

    /// How many requests the simulator counted for `METHOD route` (spec path template), by
    /// outcome (status or fault).
    pub async fn count(&self, method_route: &str, outcome: &str) -> u64 {
        let stats = self.admin("GET", "/_sim/stats", None).await;
        stats["counts"][method_route][outcome].as_u64().unwrap_or(0)
    }

    /// The id of a demo user's default conversation.
    pub async fn conversation_of(&self, external_id: &str) -> String {
        let r = self
            .get(&Self::app(&format!(
                "/conversations?filter[userExternalId]={external_id}"
            )))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["conversations"][0]["id"]
            .as_str()
            .expect("conversation id")
            .to_owned()
    }
}

/// A webhook endpoint on a free loopback port that records what it receives and answers with
/// the statuses it is told to (then 200).
pub struct Receiver {
    pub url: String,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<(HeaderMap, Value)>>,
    script: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let script: Arc<Mutex<Vec<u16>>> = Arc::new(Mutex::new(Vec::new()));
        let s = script.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                let s = s.clone();
                async move {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = tx.send((headers, v));
                    let status = {
                        let mut s = s.lock().expect("script");
                        if s.is_empty() { 200 } else { s.remove(0) }
                    };
                    axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            rx: tokio::sync::Mutex::new(rx),
            script,
        }
    }

    /// Answer the next POSTs with these statuses.
    pub fn answer_with(&self, statuses: &[u16]) {
        self.script
            .lock()
            .expect("script")
            .extend_from_slice(statuses);
    }

    /// The next POST, or panic after 10 s.
    pub async fn next(&self) -> (HeaderMap, Value) {
        tokio::time::timeout(Duration::from_secs(10), self.rx.lock().await.recv())
            .await
            .expect("no webhook arrived within 10 s")
            .expect("receiver closed")
    }

    /// Collects envelopes until `done` says the events seen so far suffice; returns the POSTs
    /// and their events in order.
    pub async fn until(
        &self,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> (Vec<(HeaderMap, Value)>, Vec<Value>) {
        let mut posts = Vec::new();
        let mut events: Vec<Value> = Vec::new();
        while !done(&events) {
            let (h, body) = self.next().await;
            events.extend(body["events"].as_array().cloned().unwrap_or_default());
            posts.push((h, body));
        }
        (posts, events)
    }
}

/// Config for a simulator that sends webhooks to `url` and retries quickly.
pub fn with_webhooks(url: &str) -> SimConfig {
    let mut c = SimConfig::local(Seed::Demo);
    c.webhook_url = Some(url.to_owned());
    c.webhook_timing.retry_base = Duration::from_millis(20);
    c
}

/// Installs a do-nothing global subscriber once, before any test creates a span.
///
/// The telemetry tests capture spans with a subscriber scoped to their thread. `tracing` caches
/// per call site whether anyone is interested; with no global subscriber, a span created on a
/// thread without one would get a placeholder id that a scoped subscriber later fails to find.
/// A global registry keeps every call site enabled and every span id real.
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
}

/// Polls `check` every 20 ms until it holds; fails naming `what` after 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Actor settings for fast tests: retries after 5 ms, doubling to 40 ms, so fault tests take
/// milliseconds. Tests that need other numbers change the fields they care about.
pub fn quick() -> zendesk_messaging_mcp::actors::SupervisorSettings {
    let mut s = zendesk_messaging_mcp::actors::SupervisorSettings::default();
    s.limits.initial_backoff = Duration::from_millis(5);
    s.limits.max_backoff = Duration::from_millis(40);
    s
}
