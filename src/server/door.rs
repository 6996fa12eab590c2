//! The `/mcp` front door: the layers every `/mcp` request passes, outermost first, each a file
//! below `door/`, before rmcp's Streamable HTTP service:
//!
//! 0. `cors.rs`      CORS for browser clients: preflights answered, allowed origins named
//! 1. `turns.rs`     a turn: at most so many POSTs at once, the others wait, then 503 busy
//! 2. `tokens.rs`    the bearer token (static or OAuth): the caller's profile, or 401/429/503
//! 3. `scopes.rs`    an OAuth caller's scopes against the tool it calls: 403 insufficient_scope
//! 4. `sessions.rs`  an MCP session answers only the caller that opened it, on every replica
//! 5. `hosts.rs`     the transport's `Host`/`Origin` refusal, explained as JSON
//! 6. `negotiate.rs` `Accept` and the body as clients send them; JSON-RPC errors for the rest
//! 7. `stateless.rs` a plain stateless `tools/call`, answered without a service of its own
//!
//! Each step reads what an earlier one put in the request's extensions (the profile, the access
//! rules it was read under) and imports none of the steps after it. Steps 2 to 4, about who
//! calls, run as one layer ([`caller`]), and negotiation asks step 7 through the [`PlainPath`]
//! it is given: every layer costs a boxed future and a clone of what it wraps per request.
//!
//! [`PlainPath`]: negotiate::PlainPath

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

pub(crate) mod cors;
mod hosts;
mod negotiate;
mod scopes;
mod sessions;
mod stateless;
mod tokens;
mod turns;

pub(crate) use sessions::Sessions;

use super::{AppState, HttpOptions};
use crate::mcp::ZendeskMcp;

/// The `/mcp` route behind its layers.
pub(super) fn mcp_route(
    state: &AppState,
    ct: CancellationToken,
    http: &HttpOptions,
    port: u16,
) -> Router<AppState> {
    let operations = state.operations.clone();
    let live = state.live.clone();
    let hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(str::to_owned)
        .chain(http.allowed_hosts.iter().cloned())
        .collect();
    let allowed = hosts::AllowedHosts::new(&hosts);
    let stateless: Arc<dyn negotiate::PlainPath> = Arc::new(stateless::StatelessCalls::new(
        operations.clone(),
        live.clone(),
        allowed.clone(),
    ));
    let origins: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .into_iter()
        .map(|h| format!("http://{h}:{port}"))
        .chain(http.allowed_origins.iter().cloned())
        .collect();
    let cors = cors::mcp(origins.clone());
    let mut config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        // Stateless (2026-07-28) calls that need no stream get a plain JSON answer.
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(http.max_body)
        .with_cancellation_token(ct);
    // With a shared store, a session started on another replica is restored here.
    config.session_store = state.actors.stores.sessions();
    let mcp: StreamableHttpService<ZendeskMcp, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(ZendeskMcp::new(operations.clone(), live.clone())),
        state.sessions.manager(),
        config,
    );
    let negotiation = negotiate::Negotiation {
        body_limit: http.max_body,
        plain: Some(stateless),
    };
    let turns = turns::Turns::new(
        http.mcp_concurrency,
        http.mcp_turn_wait,
        state.telemetry.metrics.active_requests.clone(),
    );
    // Innermost first: the last layer added is the first a request meets.
    Router::new()
        .nest_service("/mcp", SharedMcp(Arc::new(mcp)))
        .layer(from_fn_with_state(negotiation, negotiate::negotiate))
        .layer(from_fn_with_state(allowed, hosts::explain_refusal))
        .layer(from_fn_with_state(state.clone(), caller))
        .layer(from_fn_with_state(turns, turns::take_turn))
        .layer(cors)
}

/// Steps 2 to 4 as one layer: the bearer token, an OAuth caller's scopes, the session;
/// the first refusal answers.
async fn caller(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let req = match tokens::authenticate(&state, req).await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    let req = match scopes::check_scopes(req).await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    let asked = sessions::asked(&req);
    let after = match sessions::check(&state.sessions, asked).await {
        Ok(after) => after,
        Err(refused) => return refused,
    };
    let response = next.run(req).await;
    sessions::after(&state.sessions, after, response).await
}

/// rmcp's Streamable HTTP service behind one `Arc`. The router's layers clone the service they
/// wrap for every request (and a clone of a layer clones what it wraps, so a request clones the
/// innermost service once per layer above it), and a clone of rmcp's service copies its
/// configuration; behind an `Arc` each of those clones is a count increment.
#[derive(Clone)]
struct SharedMcp(Arc<StreamableHttpService<ZendeskMcp, LocalSessionManager>>);

impl tower::Service<Request> for SharedMcp {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { Ok(service.handle(req).await.map(axum::body::Body::new)) })
    }
}
