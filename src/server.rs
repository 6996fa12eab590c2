//! The HTTP face of the server: `/mcp` (Streamable HTTP), `POST /webhooks/sunco`, `/healthz`
//! and `/readyz`; and the wiring of `--simulator`.
//!
//! The webhook route checks `X-API-Key` in constant time, reads the envelope's events one by
//! one (every payload the spec allows), and answers once the delivery tracker has stored them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod negotiate;

use crate::access::{AccessPolicy, Refusal};
use crate::actors::{ActorKind, Actors, SupervisorSettings};
use crate::config::Config;
use crate::error::{CallError, ErrorClass};
use crate::mcp::ZendeskMcp;
use crate::operations::Operations;
use crate::operations::credentials::CredentialVerdict;
use crate::secret::Secret;
use crate::sunco::auth::Scope;
use crate::sunco::events;

/// The webhook route's path.
pub const WEBHOOK_PATH: &str = "/webhooks/sunco";
/// Webhook bodies larger than this are refused (the API batches at most a few events).
const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// Whether the upstream has accepted our credentials once.
#[derive(Debug, Clone)]
enum CredentialCheck {
    Unchecked,
    Accepted,
    Refused(String),
}

/// What the HTTP routes share.
#[derive(Clone)]
pub struct AppState {
    pub actors: Arc<Actors>,
    operations: Arc<Operations>,
    access: Arc<AccessPolicy>,
    telemetry: Arc<crate::telemetry::Telemetry>,
    app_id: Arc<str>,
    webhook_secret: Option<Secret>,
    credentials: Arc<Mutex<CredentialCheck>>,
}

impl AppState {
    fn credentials(&self) -> CredentialCheck {
        self.credentials
            .lock()
            .map(|c| c.clone())
            .unwrap_or(CredentialCheck::Unchecked)
    }
}

/// How the HTTP face is set up, beyond the actors.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Who may call `/mcp` and which tools each caller may use.
    pub access: Arc<AccessPolicy>,
    /// `Host` names accepted on `/mcp` besides the loopback ones (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted on `/mcp` besides the server's own loopback origins.
    pub allowed_origins: Vec<String>,
    /// Largest `/mcp` request body.
    pub max_body: usize,
    /// Whether `/mcp` is served at all (`stdio` serves only the webhook route and the probes
    /// over HTTP unless asked for more).
    pub serve_mcp: bool,
    /// How often the upstream webhook's triggers are checked; `None` never checks.
    pub webhook_check: Option<Duration>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            access: Arc::new(AccessPolicy::default()),
            allowed_hosts: vec![],
            allowed_origins: vec![],
            max_body: 1024 * 1024,
            serve_mcp: true,
            webhook_check: Some(crate::operations::webhooks::CHECK_INTERVAL),
        }
    }
}

/// The router with every route.
pub fn router(state: AppState, ct: CancellationToken, http: &HttpOptions, port: u16) -> Router {
    let operations = state.operations.clone();
    let access = state.access.clone();
    let hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(str::to_owned)
        .chain(http.allowed_hosts.iter().cloned())
        .collect();
    let allowed = negotiate::AllowedHosts(Arc::new(hosts.clone()));
    let origins = ["localhost", "127.0.0.1", "[::1]"]
        .into_iter()
        .map(|h| format!("http://{h}:{port}"))
        .chain(http.allowed_origins.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        // Stateless (2026-07-28) calls that need no stream get a plain JSON answer.
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(http.max_body)
        .with_cancellation_token(ct.child_token());
    let mcp: StreamableHttpService<ZendeskMcp, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(ZendeskMcp::new(operations.clone(), access.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp = Router::new()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(
            negotiate::BodyLimit(http.max_body),
            negotiate::negotiate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            allowed,
            negotiate::explain_refusal,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    let mcp = if http.serve_mcp { mcp } else { Router::new() };
    Router::new()
        .merge(mcp)
        .route(
            WEBHOOK_PATH,
            post(webhook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn(trace_http))
        .with_state(state)
}

/// A server span for each request to `/mcp` and the webhook route, child of the caller's
/// `traceparent` when it sends one. Probes and scrapes are not traced.
async fn trace_http(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path();
    let route = if path == "/mcp" || path.starts_with("/mcp/") {
        "/mcp"
    } else if path == WEBHOOK_PATH {
        WEBHOOK_PATH
    } else {
        return next.run(req).await;
    };
    let method = req.method().clone();
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    {
        let headers = req.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(tp) = header("traceparent") {
            crate::telemetry::adopt_remote_parent(&span, tp, header("tracestate"));
        }
    }
    let mut req = req;
    req.extensions_mut()
        .insert(crate::telemetry::RequestSpan(span.clone()));
    let response = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    // Integers as i64: the OpenTelemetry layer records unsigned fields as text.
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    response
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render_prometheus(),
    )
        .into_response()
}

/// Bearer-token check on `/mcp`: 401 with `WWW-Authenticate` for a missing or wrong token, 429
/// past the token's rate; otherwise the caller's profile goes along with the request.
async fn authenticate(
    State(state): State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match state.access.authenticate(header.as_deref()).await {
        Ok(Some(profile)) => {
            req.extensions_mut().insert(profile);
            next.run(req).await
        }
        Ok(None) => next.run(req).await,
        Err(Refusal::Unauthenticated) => {
            tracing::warn!(target: "audit", outcome = "unauthenticated", "refused a /mcp request without a valid bearer token");
            let mut r = problem(
                StatusCode::UNAUTHORIZED,
                ErrorClass::Unauthorized,
                "a valid bearer token is required: send Authorization: Bearer <token>",
            );
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    "Bearer realm=\"zendesk-messaging-mcp\", error=\"invalid_token\"",
                ),
            );
            r
        }
        Err(Refusal::RateLimited(wait)) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut r = problem(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorClass::RateLimited,
                format!("this token's request rate is exceeded; retry after {secs} s"),
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            r
        }
    }
}

/// An error answer of a route other than `/mcp`'s JSON-RPC: `{"error": class, "message": …}`.
fn problem(status: StatusCode, class: ErrorClass, message: impl Into<String>) -> Response {
    (status, axum::Json(class.body(message))).into_response()
}

async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (outcome, response) = receive_webhook(&state, &headers, &body).await;
    state
        .actors
        .metrics
        .webhook_requests
        .add(1, &[crate::telemetry::kv("outcome", outcome)]);
    response
}

/// Checks one webhook POST, reads its events and stores them; returns the outcome attribute and
/// the answer.
///
/// The answer is 200 with the counts (`{"recorded","duplicates","unusable","ignored"}`) once
/// every event is stored or can never be used, and 503 when events were not stored (the
/// upstream then retries them). An envelope that is not one (not JSON, no `app.id`, `events`
/// not an array) or is for another app is refused with 400, which the upstream does not retry.
async fn receive_webhook(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> (&'static str, Response) {
    let Some(secret) = &state.webhook_secret else {
        return (
            "unconfigured",
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorClass::Unavailable,
                "webhooks are not configured: set SUNCO_WEBHOOK_SECRET to the webhook's secret",
            ),
        );
    };
    let presented = headers
        .get("x-api-key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !secret.matches(presented) {
        tracing::warn!("refused a webhook POST with a missing or wrong X-API-Key");
        return (
            "unauthorized",
            problem(
                StatusCode::UNAUTHORIZED,
                ErrorClass::Unauthorized,
                "missing or wrong X-API-Key: send the webhook's secret (SUNCO_WEBHOOK_SECRET)",
            ),
        );
    }
    let malformed = |why: String| {
        tracing::warn!("refused a webhook POST that is not an event envelope: {why}");
        (
            "malformed",
            problem(
                StatusCode::BAD_REQUEST,
                ErrorClass::InvalidArgument,
                format!("not a Sunshine Conversations webhook envelope: {why}"),
            ),
        )
    };
    let envelope: serde_json::Value = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => return malformed(format!("the body is not JSON ({e})")),
    };
    let Some(app_id) = envelope
        .pointer("/app/id")
        .and_then(serde_json::Value::as_str)
    else {
        return malformed("app.id is missing".into());
    };
    if app_id != &*state.app_id {
        tracing::warn!(app_id, "refused webhook events for another app");
        return (
            "wrong_app",
            problem(
                StatusCode::BAD_REQUEST,
                ErrorClass::InvalidArgument,
                format!(
                    "the events are for app {app_id}, this server serves app {}",
                    state.app_id
                ),
            ),
        );
    }
    let events: crate::actors::delivery::ReadEvents = match envelope.get("events") {
        None | Some(serde_json::Value::Null) => Vec::new().into(),
        Some(serde_json::Value::Array(list)) => list.iter().map(events::read).collect(),
        Some(_) => return malformed("events is not an array".into()),
    };
    match state.actors.tracker.record(events).await {
        Ok(counts) => {
            tracing::debug!(
                recorded = counts.recorded,
                duplicates = counts.duplicates,
                unusable = counts.unusable,
                ignored = counts.ignored,
                "webhook events stored"
            );
            (
                "accepted",
                (StatusCode::OK, axum::Json(counts)).into_response(),
            )
        }
        // Not stored: 503, so the upstream retries them.
        Err(e) => (
            "unavailable",
            problem(StatusCode::SERVICE_UNAVAILABLE, e.class(), e.to_string()),
        ),
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    if state.actors.is_running() {
        (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
    } else {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorClass::Unavailable,
            "the actors have stopped; the server is stopping",
        )
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    let mut missing = vec![];
    if !state.actors.is_running() {
        missing.push("the supervisor has stopped".to_owned());
    }
    for kind in ActorKind::ALL {
        if !state.actors.is_up(kind) {
            missing.push(format!("the {} actor is restarting", kind.as_str()));
        }
    }
    match state.credentials() {
        CredentialCheck::Accepted => {}
        CredentialCheck::Unchecked => {
            missing.push("the credentials have not been checked against the upstream yet".into())
        }
        CredentialCheck::Refused(why) => {
            missing.push(format!("the upstream refused the credentials: {why}"))
        }
    }
    state
        .actors
        .metrics
        .ready
        .record(u64::from(missing.is_empty()), &[]);
    // Delivery tracking does not decide readiness (the tools work without it), but it is shown.
    let tracking = state.actors.tracker.tracking();
    if missing.is_empty() {
        (
            StatusCode::OK,
            axum::Json(json!({"status": "ready", "tracking": tracking})),
        )
            .into_response()
    } else {
        let mut body = ErrorClass::Unavailable.body(format!("not ready: {}", missing.join("; ")));
        body["status"] = json!("not ready");
        body["reasons"] = json!(missing);
        body["tracking"] = json!(tracking);
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

/// Checks the credentials against the upstream, again with growing pauses until it gives a
/// verdict, and records it for `/readyz`.
async fn check_credentials(state: AppState, scope: Scope, ct: CancellationToken) {
    let mut wait = Duration::from_millis(500);
    loop {
        let verdict = match state.operations.check_credentials(scope).await {
            Ok(CredentialVerdict::Accepted) => {
                tracing::info!("the upstream accepted the credentials");
                CredentialCheck::Accepted
            }
            Ok(CredentialVerdict::Refused(why)) => {
                tracing::error!("the upstream refused the credentials: {why}");
                CredentialCheck::Refused(why)
            }
            Err(e) => {
                tracing::warn!("cannot check the credentials yet: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = ct.cancelled() => return,
                }
                wait = (wait * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let accepted = matches!(verdict, CredentialCheck::Accepted);
        state.actors.metrics.ready.record(u64::from(accepted), &[]);
        if let Ok(mut c) = state.credentials.lock() {
            *c = verdict;
        }
        return;
    }
}

/// A running server.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub actors: Arc<Actors>,
    /// The operations the tools call (for a transport of its own, such as stdio).
    pub operations: Arc<Operations>,
    ct: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// `http://ADDR/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn webhook_url(&self) -> String {
        format!("http://{}{WEBHOOK_PATH}", self.addr)
    }

    /// Resolves when the server stops on its own (the actors stopped after a restart storm).
    pub async fn stopped(&self) {
        self.actors.stopped().await;
    }

    pub async fn shutdown(self) {
        self.ct.cancel();
        let _ = self.task.await;
        self.actors.shutdown().await;
    }
}

/// Starts the actors and serves every route on `listener`, open to loopback callers.
pub async fn serve(
    listener: TcpListener,
    config: &Config,
    settings: SupervisorSettings,
) -> Result<RunningServer, CallError> {
    serve_with(listener, config, settings, HttpOptions::default()).await
}

/// [`serve`] with access rules and HTTP options.
pub async fn serve_with(
    listener: TcpListener,
    config: &Config,
    mut settings: SupervisorSettings,
    http: HttpOptions,
) -> Result<RunningServer, CallError> {
    settings.limits.deadline = config.timeout;
    let telemetry = settings.telemetry.clone();
    let addr = listener
        .local_addr()
        .map_err(|e| CallError::Internal(e.to_string()))?;
    let actors = Arc::new(Actors::start(config, settings).await?);
    let operations = Arc::new(Operations::new(actors.clone()));
    let state = AppState {
        actors: actors.clone(),
        operations: operations.clone(),
        access: http.access.clone(),
        telemetry,
        app_id: config.app_id.as_str().into(),
        webhook_secret: config.webhook_secret.clone(),
        credentials: Arc::new(Mutex::new(CredentialCheck::Unchecked)),
    };
    if config.webhook_secret.is_none() {
        tracing::warn!(
            "no SUNCO_WEBHOOK_SECRET: {WEBHOOK_PATH} refuses every POST (503), so delivery tracking is off"
        );
    }
    let ct = CancellationToken::new();
    // The credentials first; then, with the upstream known to answer, the webhook check.
    let (check_state, scope, check_ct) = (state.clone(), config.scope, ct.child_token());
    let (webhook_secret, every) = (config.webhook_secret.clone(), http.webhook_check);
    tokio::spawn(async move {
        check_credentials(check_state.clone(), scope, check_ct.clone()).await;
        if let Some(every) = every {
            crate::operations::webhooks::run(
                check_state.actors.clone(),
                webhook_secret,
                every,
                check_ct,
            )
            .await;
        }
    });
    let app = router(state, ct.clone(), &http, addr.port());
    let stop = ct.clone();
    let task = tokio::spawn(async move {
        // Answers are written in pieces (head, then SSE events): without TCP_NODELAY, Nagle's
        // algorithm holds the second write until the client's delayed ACK, ~40 ms per call.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("could not set TCP_NODELAY on a connection: {e}");
            }
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled_owned().await })
            .await;
        if let Err(e) = served {
            tracing::error!("the HTTP server failed: {e}");
        }
    });
    Ok(RunningServer {
        addr,
        actors,
        operations,
        ct,
        task,
    })
}

/// A server wired to an embedded simulator (the `--simulator` flag).
pub struct WithSimulator {
    pub server: RunningServer,
    pub simulator: crate::simulator::RunningSimulator,
    pub config: Config,
}

/// The configuration that points the server at a simulator at `api_url` with the demo keys.
pub fn simulator_config(api_url: &str) -> Result<Config, CallError> {
    use crate::simulator::seed;
    let api_url = crate::config::parse_api_url(api_url, "")
        .map_err(|e| CallError::Internal(e.to_string()))?;
    Ok(Config {
        app_id: seed::DEFAULT_APP_ID.to_owned(),
        key_id: seed::DEFAULT_KEY_ID.to_owned(),
        key_secret: Secret::new(seed::DEFAULT_KEY_SECRET),
        key_secret_file: None,
        scope: Scope::App,
        auth: crate::config::AuthMode::Jwt,
        api_url,
        webhook_secret: Some(Secret::new(SIMULATOR_WEBHOOK_SECRET)),
        timeout: Duration::from_secs(crate::config::DEFAULT_TIMEOUT_SECS),
        jwt_lifetime: Duration::from_secs(crate::config::DEFAULT_JWT_LIFETIME_SECS),
    })
}

/// The webhook secret shared by the server and its embedded simulator.
pub const SIMULATOR_WEBHOOK_SECRET: &str = "sim-webhook-secret";

/// Binds `listener` for the server, starts the demo simulator on another loopback port with its
/// webhooks aimed at the server's webhook route, and serves.
pub async fn serve_with_simulator(
    listener: TcpListener,
    settings: SupervisorSettings,
    deadline: Option<Duration>,
    http: HttpOptions,
) -> Result<WithSimulator, CallError> {
    use crate::simulator::{self, SimConfig, seed::Seed};
    let addr = listener
        .local_addr()
        .map_err(|e| CallError::Internal(e.to_string()))?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let mut sim_config = SimConfig::local(Seed::Demo);
    sim_config.webhook_url = Some(format!("http://{host}{WEBHOOK_PATH}"));
    sim_config.webhook_secret = Secret::new(SIMULATOR_WEBHOOK_SECRET);
    let simulator = simulator::start(sim_config)
        .await
        .map_err(|e| CallError::Internal(format!("cannot start the simulator: {e}")))?;
    let mut config = simulator_config(&simulator.base_url())?;
    if let Some(d) = deadline {
        config.timeout = d;
    }
    let server = serve_with(listener, &config, settings, http).await?;
    Ok(WithSimulator {
        server,
        simulator,
        config,
    })
}
