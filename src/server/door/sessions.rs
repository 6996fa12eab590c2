//! The fourth layer: session ownership. With tokens, an MCP session answers only the caller
//! that opened it (MCP security guidance: bind sessions to the user), checked before anything
//! runs; the caller of an `initialize` that opens a session becomes its owner.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::access::AccessProfile;
use crate::error::ErrorClass;
use crate::server::problem;

/// Who opened each MCP session: the caller's principal by session id. Behind one `Arc`: the
/// layer's state is cloned for every request, and a clone of the cache itself is several.
#[derive(Clone)]
pub(crate) struct SessionOwners(Arc<moka::future::Cache<String, String>>);

impl SessionOwners {
    pub(crate) fn new() -> Self {
        Self(Arc::new(
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(24 * 3600))
                .build(),
        ))
    }
}

pub(super) async fn check_owner(
    State(owners): State<SessionOwners>,
    req: Request,
    next: Next,
) -> Response {
    let Some(profile) = req.extensions().get::<Arc<AccessProfile>>().cloned() else {
        return next.run(req).await;
    };
    let principal = profile.principal();
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session {
        match owners.0.get(id).await {
            Some(owner) if owner != principal => {
                tracing::warn!(target: "audit", profile = %profile.name, outcome = "forbidden", "refused a request in another caller's session");
                return problem(
                    StatusCode::FORBIDDEN,
                    ErrorClass::Forbidden,
                    "this MCP session was opened by another caller: open a session of your own (initialize without Mcp-Session-Id)",
                );
            }
            Some(_) => {}
            // A session this replica has not seen (restored from the shared store): its first
            // caller owns it here.
            None => owners.0.insert(id.clone(), principal.clone()).await,
        }
    }
    let response = next.run(req).await;
    if session.is_none()
        && let Some(id) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
    {
        owners.0.insert(id.to_owned(), principal).await;
    }
    response
}
