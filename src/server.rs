//! The HTTP face of the server: `/mcp` (Streamable HTTP), `POST /webhooks/sunco`, `/healthz`
//! and `/readyz`; and the wiring of `--simulator`.
//!
//! This file holds the router, the serving and what every route shares; the webhook route,
//! the probes and the `--simulator` wiring have files of their own below `server/`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod door;
mod health;
mod simulator;
mod webhook;

pub use simulator::{
    SIMULATOR_WEBHOOK_SECRET, WithSimulator, serve_with_simulator, simulator_config,
};

use crate::access::AccessPolicy;
use crate::actors::{Actors, SupervisorSettings};
use crate::config::Config;
use crate::error::{CallError, ErrorClass};
use crate::operations::Operations;
use crate::secret::Secret;

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

/// `/mcp` POSTs handled at once by default; the others wait for a turn before anything is
/// allocated for them (what a thousand connections cost is then what a thousand waiting
/// requests cost; benches/hop.sh). As many as the dispatcher sends upstream at once by default
/// (`DispatchLimits::max_in_flight`): more calls at once would only wait there, holding more.
pub const MCP_CONCURRENCY: usize = 64;

/// How long a `/mcp` POST waits for a turn by default before it is refused as busy.
pub(crate) const MCP_TURN_WAIT: Duration = Duration::from_secs(5);

/// How often the settings files are looked at for a change.
const RELOAD_POLL: Duration = Duration::from_secs(1);

/// What the HTTP routes share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) actors: Arc<Actors>,
    operations: Arc<Operations>,
    live: Arc<crate::live::Live>,
    /// The MCP sessions: this replica's, and who opened each, everywhere.
    sessions: door::Sessions,
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
    /// Who may call `/mcp` and which tools each caller may use (when `live` is not given).
    pub access: Arc<AccessPolicy>,
    /// Settings re-read from their files while the server runs ([`crate::live`]); `None`:
    /// `access` and the configuration, fixed.
    pub live: Option<Arc<crate::live::Live>>,
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
    /// `/mcp` POSTs handled at once ([`MCP_CONCURRENCY`]), and how long one waits for its
    /// turn before it is refused as busy ([`MCP_TURN_WAIT`]).
    pub mcp_concurrency: usize,
    pub mcp_turn_wait: Duration,
    /// Where `/metrics` is served on a listener of its own (and not beside `/mcp`); `None`:
    /// beside the other routes.
    pub metrics_bind: Option<SocketAddr>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            access: Arc::new(AccessPolicy::default()),
            live: None,
            allowed_hosts: vec![],
            allowed_origins: vec![],
            max_body: 1024 * 1024,
            serve_mcp: true,
            webhook_check: Some(crate::operations::webhooks::CHECK_INTERVAL),
            mcp_concurrency: MCP_CONCURRENCY,
            mcp_turn_wait: MCP_TURN_WAIT,
            metrics_bind: None,
        }
    }
}

/// The router with every route.
pub(crate) fn router(
    state: AppState,
    ct: CancellationToken,
    http: &HttpOptions,
    port: u16,
) -> Router {
    let mcp = if http.serve_mcp {
        door::mcp_route(&state, ct.child_token(), http, port)
    } else {
        Router::new()
    };
    let rest = Router::new()
        .route(
            WEBHOOK_PATH,
            post(webhook::webhook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(
            "/metrics",
            match http.metrics_bind {
                // Served on a listener of its own: here, a route like any unknown one.
                Some(_) => get(metrics_elsewhere),
                None => get(metrics),
            },
        )
        // RFC 9728 §3: at the root, and with the resource's path appended; public.
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource).layer(door::cors::public()),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*resource}",
            get(protected_resource).layer(door::cors::public()),
        )
        .fallback(|| async {
            problem(
                StatusCode::NOT_FOUND,
                ErrorClass::InvalidArgument,
                "no such route: the server answers /mcp, POST /webhooks/sunco, /healthz, /readyz, /metrics and /.well-known/oauth-protected-resource",
            )
        })
        .layer(axum::middleware::from_fn(json_errors));
    Router::new()
        .merge(mcp)
        .merge(rest)
        .layer(axum::middleware::from_fn(trace_http))
        .with_state(state)
}

/// Every route but `/mcp` answers errors as `{"error": class, "message": …}`, those the HTTP
/// framework makes itself too (a body past the limit, a method the route does not take).
async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let allow = response
        .headers()
        .get(axum::http::header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let message = match (status, allow) {
        (StatusCode::PAYLOAD_TOO_LARGE, _) => {
            format!("the body is larger than {WEBHOOK_BODY_LIMIT} bytes")
        }
        (StatusCode::METHOD_NOT_ALLOWED, Some(allow)) => {
            format!("this route takes {allow}")
        }
        _ => format!(
            "the request could not be read ({})",
            status.canonical_reason().unwrap_or("error")
        ),
    };
    let class = if status.is_server_error() {
        ErrorClass::Unavailable
    } else {
        ErrorClass::InvalidArgument
    };
    let mut answer = problem(status, class, message);
    if let Some(allow) = response.headers().get(axum::http::header::ALLOW) {
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    answer
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

/// `/metrics` on the main port when `--metrics-bind` serves it elsewhere.
async fn metrics_elsewhere() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        ErrorClass::NotFound,
        "/metrics is served on the address of --metrics-bind, not here",
    )
}

/// The protected-resource metadata (RFC 9728): at the well-known root, and at the well-known
/// path built from the public URL's path (`/zendesk/mcp` behind a path prefix) or from this
/// server's own `/mcp`.
async fn protected_resource(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    let access = state.live.get().access.clone();
    match &access.resource_server {
        Some(rs)
            if ![
                crate::oauth::METADATA_PATH.to_owned(),
                format!("{}/mcp", crate::oauth::METADATA_PATH),
                rs.settings.metadata_path(),
            ]
            .contains(&uri.path().trim_end_matches('/').to_owned()) =>
        {
            problem(
                StatusCode::NOT_FOUND,
                ErrorClass::InvalidArgument,
                format!(
                    "no protected resource here: this server's metadata is at {}",
                    rs.settings.metadata_url()
                ),
            )
        }
        Some(rs) => axum::Json(rs.metadata(&access.oauth.scope_names()).await).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            ErrorClass::InvalidArgument,
            "/mcp takes static bearer tokens here, not OAuth (no --oauth-issuer)",
        ),
    }
}

/// An error answer of a route other than `/mcp`'s JSON-RPC: `{"error": class, "message": …}`.
pub(crate) fn problem(
    status: StatusCode,
    class: ErrorClass,
    message: impl Into<String>,
) -> Response {
    (status, axum::Json(class.body(message))).into_response()
}

/// [`problem`] with `Retry-After: retry_after` (seconds): a refusal the caller may try again.
pub(crate) fn problem_retry(
    status: StatusCode,
    class: ErrorClass,
    message: impl Into<String>,
    retry_after: u64,
) -> Response {
    let mut r = problem(status, class, message);
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(retry_after),
    );
    r
}

/// A running server.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when on a listener of its own (`--metrics-bind`).
    pub metrics_addr: Option<SocketAddr>,
    pub actors: Arc<Actors>,
    /// The operations the tools call (for a transport of its own, such as stdio).
    pub operations: Arc<Operations>,
    /// The settings in force, reloadable when built from files.
    pub live: Arc<crate::live::Live>,
    ct: CancellationToken,
    mcp_ct: CancellationToken,
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
        self.shutdown_within(Duration::from_secs(30)).await;
    }

    /// Stops accepting connections and requests, lets the calls in flight finish for up to
    /// `grace`, then ends what is left (open event streams) and stops the actors.
    pub async fn shutdown_within(mut self, grace: Duration) {
        self.ct.cancel();
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            tracing::warn!(
                "calls still open after the {} s grace period are ended",
                grace.as_secs()
            );
            self.mcp_ct.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        }
        self.mcp_ct.cancel();
        self.actors.shutdown().await;
    }
}

/// OAuth: the authorization server's metadata and keys now, so a wrong or unreachable issuer
/// shows in the log at start rather than to the first caller.
async fn prefetch_oauth(rs: Arc<crate::oauth::ResourceServer>) {
    match rs.prefetch().await {
        Ok(()) => {
            tracing::info!(issuer = %rs.settings.issuer_given, "read the authorization server's metadata and keys")
        }
        Err(e) => tracing::error!(
            "cannot read the authorization server's metadata or keys ({e}): OAuth callers are answered 503 until it can be read"
        ),
    }
}

/// The credentials first; then, with the upstream known to answer, the webhook check every
/// `every` (none without), until `ct` is cancelled.
fn check_upstream(
    state: AppState,
    config: &Config,
    every: Option<Duration>,
    ct: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (scope, webhook_secret) = (config.scope, config.webhook_secret.clone());
    async move {
        health::check_credentials(state.clone(), scope, ct.clone()).await;
        let access = state.live.get().access.clone();
        crate::operations::switchboard::warn_of_unknown_integrations(&state.actors, &access).await;
        if let Some(every) = every {
            crate::operations::webhooks::run(state.actors.clone(), webhook_secret, every, ct).await;
        }
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
    let rate = (settings.limits.rate, settings.limits.burst);
    let telemetry = settings.telemetry.clone();
    let addr = listener
        .local_addr()
        .map_err(|e| CallError::Internal(e.to_string()))?;
    let actors = Arc::new(Actors::start(config, settings).await?);
    let ct = CancellationToken::new();
    let operations = Arc::new(Operations::new(actors.clone()).stopping_on(ct.clone()));
    let live = http.live.clone().unwrap_or_else(|| {
        crate::live::Live::fixed(crate::live::LiveSettings::fixed(
            http.access.clone(),
            config.timeout,
            crate::config::RequestRate {
                per_second: rate.0,
                burst: rate.1,
            },
        ))
    });
    let state = AppState {
        actors: actors.clone(),
        operations: operations.clone(),
        live: live.clone(),
        sessions: door::Sessions::new(actors.stores.session_owners.clone()),
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
    if let Some(rs) = live.get().access.resource_server.clone() {
        tokio::spawn(prefetch_oauth(rs));
    }
    // The settings files, re-read on SIGHUP and when they change.
    live.watch(actors.clone(), RELOAD_POLL, ct.child_token());
    tokio::spawn(crate::operations::claims::watch_queue(
        operations.clone(),
        ct.child_token(),
    ));
    tokio::spawn(check_upstream(
        state.clone(),
        config,
        http.webhook_check,
        ct.child_token(),
    ));
    // The MCP service has a token of its own: it is cancelled only after the grace period, so
    // the calls in flight when the server stops accepting are answered.
    let mcp_ct = CancellationToken::new();
    let metrics_addr = match http.metrics_bind {
        Some(bind) => Some(serve_metrics(bind, state.clone(), ct.clone()).await?),
        None => None,
    };
    let app = router(state, mcp_ct.clone(), &http, addr.port());
    let stop = ct.clone();
    let task = tokio::spawn(async move {
        // Answers are written in pieces (head, then SSE events): without TCP_NODELAY, Nagle's
        // algorithm holds the second write until the client's delayed ACK, ~40 ms per call.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("could not set TCP_NODELAY on a connection: {e}");
            }
        });
        // The caller's address goes along with each request, for the audit records.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled_owned().await })
            .await;
        if let Err(e) = served {
            tracing::error!("the HTTP server failed: {e}");
        }
    });
    Ok(RunningServer {
        addr,
        metrics_addr,
        actors,
        operations,
        live,
        ct,
        mcp_ct,
        task,
    })
}

/// `/metrics` alone on `bind`, until `stop`; the address it listens on.
async fn serve_metrics(
    bind: SocketAddr,
    state: AppState,
    stop: CancellationToken,
) -> Result<SocketAddr, CallError> {
    let listener = TcpListener::bind(bind).await.map_err(|e| {
        CallError::Misconfigured(format!(
            "cannot listen on {bind} for /metrics ({e}); check --metrics-bind / ZENDESK_MCP_METRICS_BIND"
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CallError::Internal(e.to_string()))?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled_owned().await })
            .await;
        if let Err(e) = served {
            tracing::error!("the /metrics listener failed: {e}");
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_declared_default_of_mcp_concurrency_is_the_one_served() {
        assert_eq!(
            crate::settings::MCP_CONCURRENCY.default,
            Some(super::MCP_CONCURRENCY.to_string().as_str())
        );
    }
}
