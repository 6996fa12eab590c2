//! The fourth layer: session ownership. With tokens, an MCP session answers only the caller
//! that opened it (MCP security guidance: bind sessions to the user), checked before anything
//! runs; the caller of an `initialize` that opens a session becomes its owner.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
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

/// A caller with a profile that sent no session: it owns the session its request opens.
pub(super) struct Opener(String);

/// What the check needs of a request, taken before it waits: the caller's profile (none
/// without tokens: nothing to check) and the session it names.
pub(super) fn asked(req: &Request) -> Option<(Arc<AccessProfile>, Option<String>)> {
    let profile = req.extensions().get::<Arc<AccessProfile>>().cloned()?;
    let session = (req.headers().get("mcp-session-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Some((profile, session))
}

/// The step before the request: refused in another caller's session; with a profile and no
/// session, the [`Opener`] to [`record`] once the answer names the session.
pub(super) async fn check_owner(
    owners: &SessionOwners,
    asked: Option<(Arc<AccessProfile>, Option<String>)>,
) -> Result<Option<Opener>, Response> {
    let Some((profile, session)) = asked else {
        return Ok(None);
    };
    let principal = profile.principal();
    let Some(id) = session else {
        return Ok(Some(Opener(principal)));
    };
    match owners.0.get(&id).await {
        Some(owner) if owner != principal => {
            tracing::warn!(target: "audit", profile = %profile.name, outcome = "forbidden", "refused a request in another caller's session");
            Err(problem(
                StatusCode::FORBIDDEN,
                ErrorClass::Forbidden,
                "this MCP session was opened by another caller: open a session of your own (initialize without Mcp-Session-Id)",
            ))
        }
        Some(_) => Ok(None),
        // A session this replica has not seen (restored from the shared store): its first
        // caller owns it here.
        None => {
            owners.0.insert(id, principal).await;
            Ok(None)
        }
    }
}

/// The session an answer opened, if it names one.
pub(super) fn opened(response: &Response) -> Option<String> {
    (response.headers().get("mcp-session-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The step after the answer: the opener owns the session the answer [`opened`].
pub(super) async fn record(owners: &SessionOwners, opener: Option<Opener>, opened: Option<String>) {
    if let (Some(Opener(principal)), Some(id)) = (opener, opened) {
        owners.0.insert(id, principal).await;
    }
}
