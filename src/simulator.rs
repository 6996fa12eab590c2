//! A Sunshine Conversations simulator: an HTTP server with in-memory state that answers the
//! endpoints this project uses the way the official spec says the API does.
//!
//! It is the embedded upstream of a first run, the double behind every test and the target of
//! every benchmark, so its fidelity is tested against the spec itself (see `tests/`). It must be
//! built from the spec's rules, never from what our own client happens to send.
//!
//! Every request passes one middleware ([`front`]) that applies the configured faults and counts
//! requests by route and status, then reaches a handler in [`routes`]. Admin routes live under
//! `/_sim`, a prefix the real API does not use, behind their own token.

pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod delivery;
pub(crate) mod error;
pub mod faults;
pub mod routes;
pub mod seed;
pub mod state;
pub mod validate;
pub mod webhooks;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use clap::Args;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::secret::Secret;
use crate::sunco::ids::now_timestamp;
use error::ApiError;
use faults::{Buckets, Faults, RateLimit};
use seed::{Seed, SeedParams};
use state::World;
use webhooks::{WebhookBus, WebhookTiming};

pub const DEFAULT_ADMIN_TOKEN: &str = "sim-admin-token";
const MAX_REQUEST_LOG: usize = 10_000;

/// Command-line flags of `zendesk-messaging-mcp simulator`.
#[derive(Debug, Clone, Args)]
pub struct SimulatorArgs {
    /// Address to listen on (loopback by default; port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:8091")]
    pub(crate) bind: SocketAddr,
    /// The world to start with
    #[arg(long, value_enum, default_value = "demo")]
    pub(crate) seed: Seed,
    /// Id of the simulated app
    #[arg(long, default_value = seed::DEFAULT_APP_ID)]
    pub(crate) app_id: String,
    /// Id of the app key (app_...)
    #[arg(long, default_value = seed::DEFAULT_KEY_ID)]
    pub(crate) key_id: String,
    /// Secret of the app key
    #[arg(long, default_value = seed::DEFAULT_KEY_SECRET)]
    pub(crate) key_secret: String,
    /// Bearer token for the /_sim admin routes
    #[arg(long, default_value = DEFAULT_ADMIN_TOKEN)]
    pub(crate) admin_token: String,
    /// Where to POST webhook events (the MCP server's /webhooks/sunco)
    #[arg(long)]
    pub(crate) webhook_url: Option<String>,
    /// Secret sent in X-API-Key with every webhook POST
    #[arg(long, default_value = "sim-webhook-secret")]
    pub(crate) webhook_secret: String,
    /// Delay before the second webhook attempt, doubling after (SunCo spreads 5 attempts over ~15 min)
    #[arg(long, default_value_t = 2000)]
    pub(crate) webhook_retry_base_ms: u64,
    /// Per-app rate limit: requests per second, optionally with a burst (e.g. 10:20)
    #[arg(long, value_name = "RPS[:BURST]", value_parser = RateLimit::parse)]
    pub(crate) rate_limit: Option<RateLimit>,
    /// Send Retry-After (whole seconds) with 429 answers
    #[arg(long)]
    pub(crate) retry_after: bool,
    /// Share of API requests answered 500/503 before being handled (0 to 1)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) fail_rate: f64,
    /// Latency added to every API request, in milliseconds
    #[arg(long, default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Share of API requests whose connection is dropped after handling (0 to 1)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) drop_rate: f64,
    /// Share of successful writes answered 503 after being stored (0 to 1)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) accept_then_fail_rate: f64,
}

/// Everything the simulator needs to start.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub bind: SocketAddr,
    pub seed: Seed,
    pub app_id: String,
    pub key_id: String,
    pub key_secret: Secret,
    pub(crate) admin_token: Secret,
    pub webhook_url: Option<String>,
    pub(crate) webhook_secret: Secret,
    pub webhook_timing: WebhookTiming,
    pub faults: Faults,
}

impl SimConfig {
    /// Defaults on a free loopback port: what tests start from.
    pub fn local(seed: Seed) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed,
            app_id: seed::DEFAULT_APP_ID.to_owned(),
            key_id: seed::DEFAULT_KEY_ID.to_owned(),
            key_secret: Secret::new(seed::DEFAULT_KEY_SECRET),
            admin_token: Secret::new(DEFAULT_ADMIN_TOKEN),
            webhook_url: None,
            webhook_secret: Secret::new("sim-webhook-secret"),
            webhook_timing: WebhookTiming::default(),
            faults: Faults::default(),
        }
    }
}

impl TryFrom<SimulatorArgs> for SimConfig {
    type Error = String;

    fn try_from(a: SimulatorArgs) -> Result<Self, String> {
        if !crate::sunco::ids::is_resource_id(&a.app_id) {
            return Err(format!(
                "--app-id: expected 24 hex characters, got {:?}",
                a.app_id
            ));
        }
        if crate::sunco::auth::Scope::of_key_id(&a.key_id) != Some(crate::sunco::auth::Scope::App) {
            return Err(format!(
                "--key-id: expected an app key id starting with app_, got {:?}",
                a.key_id
            ));
        }
        if let Some(url) = &a.webhook_url {
            url::Url::parse(url)
                .map_err(|_| format!("--webhook-url: expected an http(s) URL, got {url:?}"))?;
        }
        let faults = Faults {
            rate_limit: a.rate_limit,
            retry_after: a.retry_after,
            fail_rate: a.fail_rate,
            latency_ms: a.latency_ms,
            drop_rate: a.drop_rate,
            accept_then_fail_rate: a.accept_then_fail_rate,
        };
        faults.check().map_err(|e| format!("faults: {e}"))?;
        Ok(Self {
            bind: a.bind,
            seed: a.seed,
            app_id: a.app_id,
            key_id: a.key_id,
            key_secret: Secret::new(a.key_secret),
            admin_token: Secret::new(a.admin_token),
            webhook_url: a.webhook_url,
            webhook_secret: Secret::new(a.webhook_secret),
            webhook_timing: WebhookTiming {
                retry_base: Duration::from_millis(a.webhook_retry_base_ms),
                ..WebhookTiming::default()
            },
            faults,
        })
    }
}

/// One request as the simulator recorded it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestRecord {
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) path: String,
    pub(crate) status: u16,
    /// Set when the answer was replaced by a fault (`rateLimited`, `failed`,
    /// `acceptedThenFailed`, `dropped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fault: Option<&'static str>,
    /// The W3C `traceparent` the client sent, if any (to check trace propagation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) traceparent: Option<String>,
    pub(crate) at: String,
}

/// What the request log keeps of a request.
struct Received {
    method: String,
    route: String,
    path: String,
    traceparent: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// "METHOD /route/{template}" → status (or fault) → count.
    pub(crate) counts: BTreeMap<String, BTreeMap<String, u64>>,
    pub(crate) log: VecDeque<RequestRecord>,
}

/// The simulator's shared state.
pub(crate) struct Sim {
    world: Mutex<World>,
    faults: Mutex<Faults>,
    buckets: Mutex<Buckets>,
    stats: Mutex<Stats>,
    pub(crate) webhooks: WebhookBus,
    public_url: String,
    seed: Seed,
    seed_params: SeedParams,
    admin_token: Secret,
}

/// Takes a lock even if a panicking thread poisoned it: the data is plain state.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sim {
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// The base URL clients use (`http://127.0.0.1:PORT`).
    pub(crate) fn public_url(&self) -> &str {
        &self.public_url
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    pub(crate) fn set_faults(&self, f: Faults) {
        *lock(&self.faults) = f;
        lock(&self.buckets).clear();
    }

    /// Back to the seeded world; counts, logs and webhook attempts are cleared too.
    pub(crate) fn reset(&self) {
        *lock(&self.world) = seed::build(self.seed, &self.seed_params);
        *lock(&self.stats) = Stats::default();
        lock(&self.buckets).clear();
        self.webhooks.clear();
    }

    fn record(&self, r: &Received, status: u16, fault: Option<&'static str>) {
        let Received {
            method,
            route,
            path,
            traceparent,
        } = r;
        let mut stats = lock(&self.stats);
        let key = format!("{method} {route}");
        let outcome = fault.map_or_else(|| status.to_string(), str::to_owned);
        *stats
            .counts
            .entry(key)
            .or_default()
            .entry(outcome)
            .or_default() += 1;
        if stats.log.len() >= MAX_REQUEST_LOG {
            stats.log.pop_front();
        }
        stats.log.push_back(RequestRecord {
            method: method.clone(),
            route: route.clone(),
            path: path.clone(),
            status,
            fault,
            traceparent: traceparent.clone(),
            at: now_timestamp(),
        });
    }
}

/// A running simulator. Dropping it does not stop it; call [`RunningSimulator::shutdown`].
pub struct RunningSimulator {
    pub(crate) sim: Arc<Sim>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSimulator {
    /// `http://127.0.0.1:PORT`: the value for `SUNCO_API_URL`.
    pub fn base_url(&self) -> String {
        self.sim.public_url.clone()
    }

    /// Tells the webhooks what the seeded world's history would have told them
    /// ([`routes::messages::tell_history`]): for a server that starts beside the simulator.
    pub fn tell_history(&self) {
        routes::messages::tell_history(&self.sim);
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Marks a response whose connection must be closed without sending it.
#[derive(Clone, Copy)]
struct DropConnection;

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

/// Binds and starts serving in the background.
pub async fn start(config: SimConfig) -> std::io::Result<RunningSimulator> {
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let seed_params = SeedParams {
        app_id: config.app_id.clone(),
        key_id: config.key_id.clone(),
        key_secret: config.key_secret.clone(),
        webhook: config
            .webhook_url
            .clone()
            .map(|u| (u, config.webhook_secret.clone())),
    };
    let sim = Arc::new(Sim {
        world: Mutex::new(seed::build(config.seed, &seed_params)),
        faults: Mutex::new(config.faults.clone()),
        buckets: Mutex::new(Buckets::default()),
        stats: Mutex::new(Stats::default()),
        webhooks: WebhookBus::start(config.webhook_timing),
        public_url: format!("http://{addr}"),
        seed: config.seed,
        seed_params,
        admin_token: config.admin_token.clone(),
    });
    let app: Router = routes::router()
        .merge(admin::router())
        .fallback(|| async { ApiError::resource_not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed on this resource",
            )
        })
        .layer(middleware::from_fn_with_state(sim.clone(), front))
        .layer(DefaultBodyLimit::max(routes::MAX_JSON_BODY))
        .with_state(sim.clone());
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let app = app.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let app = app.clone();
                            async move {
                                let resp = app.oneshot(req.map(axum::body::Body::new)).await.unwrap_or_else(|e| match e {});
                                if resp.extensions().get::<DropConnection>().is_some() {
                                    // Failing the service makes hyper close the connection
                                    // without writing a response.
                                    Err(Dropped)
                                } else {
                                    Ok(resp)
                                }
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    });
    Ok(RunningSimulator { sim, stop, task })
}

/// The app id of an API path (`/v2/apps/{appId}/...`).
fn app_of(path: &str) -> Option<&str> {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v2"), Some("apps"), Some(app)) if !app.is_empty() => Some(app),
        _ => None,
    }
}

/// Faults, statistics and the JSON shape of body-limit errors, around every API request.
async fn front(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_sim") {
        return next.run(req).await;
    }
    let received = Received {
        method: req.method().as_str().to_owned(),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| "(no route)".to_owned()),
        path,
        traceparent: req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let faults = sim.faults();

    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if let (Some(limit), Some(app)) = (faults.rate_limit, app_of(&received.path)) {
        let verdict = lock(&sim.buckets).take(app, limit, Instant::now());
        if let Err(wait) = verdict {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests: slow down and retry later",
            )
            .into_response();
            if faults.retry_after {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            sim.record(&received, 429, Some("rateLimited"));
            return resp;
        }
    }
    if faults.fail_rate > 0.0 && rand::random::<f64>() < faults.fail_rate {
        let resp = if rand::random::<bool>() {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "An internal error occurred",
            )
        } else {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The service is temporarily unavailable",
            )
        };
        sim.record(&received, resp.status.as_u16(), Some("failed"));
        return resp.into_response();
    }

    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp = routes::too_large().into_response();
    }
    let mut fault = None;
    let is_write = received.method != "GET" && received.method != "HEAD";
    if is_write
        && resp.status().is_success()
        && faults.accept_then_fail_rate > 0.0
        && rand::random::<f64>() < faults.accept_then_fail_rate
    {
        resp = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable",
        )
        .into_response();
        fault = Some("acceptedThenFailed");
    }
    if faults.drop_rate > 0.0 && rand::random::<f64>() < faults.drop_rate {
        resp.extensions_mut().insert(DropConnection);
        fault = Some("dropped");
    }
    sim.record(&received, resp.status().as_u16(), fault);
    resp
}

/// What the simulator prints when it starts: where it is and how to call it.
pub fn banner(running: &RunningSimulator, config: &SimConfig) -> String {
    let url = running.base_url();
    let app = &config.app_id;
    format!(
        "Sunshine Conversations simulator listening on {url}\n\
         \n\
         SUNCO_API_URL={url}\n\
         SUNCO_APP_ID={app}\n\
         SUNCO_KEY_ID={key}\n\
         SUNCO_KEY_SECRET={secret}\n\
         \n\
         account key:     {act} / {act_secret}\n\
         integration key: {int} / {int_secret}\n\
         admin routes:    {url}/_sim/stats  (Authorization: Bearer {admin})\n\
         webhooks:        {hooks}\n\
         \n\
         try: curl -g -u {key}:{secret} '{url}/v2/apps/{app}/conversations?filter[userExternalId]=demo-user-01'",
        key = config.key_id,
        secret = config.key_secret.expose(),
        act = seed::ACCOUNT_KEY_ID,
        act_secret = seed::ACCOUNT_KEY_SECRET,
        int = seed::INTEGRATION_KEY_ID,
        int_secret = seed::INTEGRATION_KEY_SECRET,
        admin = config.admin_token.expose(),
        hooks = config
            .webhook_url
            .as_deref()
            .unwrap_or("(none: pass --webhook-url)"),
    )
}
