//! The fourth layer: MCP sessions (the 2025-11-25 protocol's `Mcp-Session-Id`), the same on
//! every replica. With tokens, a session answers only the caller that opened it (MCP security
//! guidance: bind sessions to the user), its owner kept in the shared store with the session;
//! a session no replica knows (never opened, ended, expired) is 404, whereupon an MCP client
//! opens a new one; a `DELETE` ends the session on every replica; and a second `GET` stream on
//! a session (a reconnect after a proxy silently dropped the first) replaces the first, so the
//! live notifications go to the newest.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use rmcp::transport::streamable_http_server::SessionId;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use crate::access::AccessProfile;
use crate::error::ErrorClass;
use crate::server::{problem, problem_retry};
use crate::shared::SessionOwners;

/// The sessions of this replica (rmcp's session manager) and their owners everywhere. Cheap to
/// clone.
#[derive(Clone)]
pub(crate) struct Sessions {
    owners: Arc<dyn SessionOwners>,
    manager: Arc<LocalSessionManager>,
}

impl Sessions {
    /// Closes what this replica holds of each session as it ends anywhere, for as long as the
    /// owners' store lives.
    pub(crate) fn new(owners: Arc<dyn SessionOwners>) -> Self {
        let manager = Arc::new(LocalSessionManager::default());
        let mut ended = owners.ended();
        let closing = manager.clone();
        tokio::spawn(async move {
            loop {
                match ended.recv().await {
                    Ok(id) => {
                        let _ = closing.close_session(&SessionId::from(id)).await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Self { owners, manager }
    }

    /// rmcp's session manager for this replica's `/mcp`.
    pub(super) fn manager(&self) -> Arc<LocalSessionManager> {
        self.manager.clone()
    }
}

/// What the check needs of a request, taken before it goes on.
pub(super) struct Asked {
    /// The caller's principal (`anonymous` without tokens: any caller may use the session).
    principal: String,
    /// The caller's profile name, for the audit record; `None` without tokens.
    profile: Option<String>,
    session: Option<String>,
    method: Method,
    /// A `GET` for the session's own stream (not a request's): none, or one resuming it
    /// (`Last-Event-ID` without a request's `/N`), with `Accept: text/event-stream`.
    opens_session_stream: bool,
}

pub(super) fn asked(req: &Request) -> Asked {
    let profile = req.extensions().get::<Arc<AccessProfile>>();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Asked {
        principal: profile.map_or_else(|| "anonymous".to_owned(), |p| p.principal()),
        profile: profile.map(|p| p.name.clone()),
        session: header("mcp-session-id"),
        method: req.method().clone(),
        opens_session_stream: req.method() == Method::GET
            && header("accept").is_some_and(|a| a.contains("text/event-stream"))
            && header("last-event-id").is_none_or(|id| !id.contains('/')),
    }
}

/// What is left to do once the answer is there.
pub(super) enum After {
    Nothing,
    /// The answer may open a session: its owner is this principal.
    Open(String),
    /// The session was asked to end.
    End(String),
}

/// The step before the request: 403 in another caller's session, 404 in a session no replica
/// knows, 503 when the shared store cannot say.
pub(super) async fn check(sessions: &Sessions, asked: Asked) -> Result<After, Response> {
    let Some(id) = asked.session else {
        return Ok(match asked.method {
            Method::POST => After::Open(asked.principal),
            _ => After::Nothing,
        });
    };
    let owner = match sessions.owners.owner(&id).await {
        Ok(owner) => owner,
        Err(e) => {
            tracing::warn!(reason = %e, "cannot read an MCP session's owner");
            return Err(unavailable(
                "the shared session store cannot be read right now, so this MCP session cannot be checked; retry in a moment",
            ));
        }
    };
    let Some(owner) = owner else {
        // Whatever this replica still holds of it ended elsewhere.
        let _ = sessions
            .manager
            .close_session(&SessionId::from(id.as_str()))
            .await;
        return Err(problem(
            StatusCode::NOT_FOUND,
            ErrorClass::NotFound,
            "this MCP session is unknown or has ended (DELETE, or 24 hours unused): open a new one (initialize without Mcp-Session-Id)",
        ));
    };
    if owner != asked.principal {
        tracing::warn!(target: "audit", profile = asked.profile.as_deref().unwrap_or("anonymous"), outcome = "forbidden", "refused a request in another caller's session");
        return Err(problem(
            StatusCode::FORBIDDEN,
            ErrorClass::Forbidden,
            "this MCP session was opened by another caller: open a session of your own (initialize without Mcp-Session-Id)",
        ));
    }
    match asked.method {
        Method::DELETE => return Ok(After::End(id)),
        // A new stream for the session's notifications, or a reconnect resuming it (an
        // EventSource sends the last id it saw): the newest wins, the old one may be a
        // connection a proxy dropped without a word. What it missed is replayed from the id.
        Method::GET if asked.opens_session_stream => {
            let held = sessions
                .manager
                .sessions
                .read()
                .await
                .get(id.as_str())
                .cloned();
            if let Some(handle) = held {
                let _ = handle.close_standalone_sse_stream(None).await;
            }
        }
        _ => {}
    }
    Ok(After::Nothing)
}

/// The step after the answer: the opener owns the session the answer names; a session asked to
/// end ends on every replica.
pub(super) async fn after(sessions: &Sessions, after: After, mut response: Response) -> Response {
    match after {
        After::Nothing => response,
        After::Open(principal) => {
            let Some(id) = (response.headers().get("mcp-session-id"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
            else {
                return response;
            };
            match sessions.owners.record(&id, &principal).await {
                Ok(()) => response,
                Err(e) => {
                    // A session without a known owner would be 404 everywhere: none opened.
                    tracing::warn!(reason = %e, "cannot record an MCP session's owner");
                    let _ = sessions
                        .manager
                        .close_session(&SessionId::from(id.as_str()))
                        .await;
                    unavailable(
                        "the shared session store cannot record the new MCP session; nothing was opened: retry in a moment",
                    )
                }
            }
        }
        After::End(id) if response.status().is_success() => match sessions.owners.end(&id).await {
            // 200, as the official SDKs expect of a DELETE (the Python SDK warns on 202).
            Ok(()) => {
                *response.status_mut() = StatusCode::OK;
                response
            }
            Err(e) => {
                tracing::warn!(reason = %e, "cannot end an MCP session on every replica");
                response = unavailable(
                    "the MCP session ended on this replica, but the shared session store cannot be reached to end it on the others: send DELETE again",
                );
                response
            }
        },
        After::End(_) => response,
    }
}

/// The shared session store cannot answer: 503, retry in a second.
fn unavailable(message: &str) -> Response {
    problem_retry(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Unavailable,
        message,
        1,
    )
}
