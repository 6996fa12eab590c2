//! The third layer: an OAuth caller's scopes. A `tools/call` of a tool the access token's
//! scopes do not grant is refused at the HTTP level, as the MCP authorization section asks:
//! 403 with the scope it needs. Anything else (static tokens, other methods, unknown tools,
//! bodies that are not JSON-RPC) goes on, to be judged by the layers after this one.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::tokens::RulesInForce;
use crate::access::{AccessPolicy, AccessProfile};
use crate::error::ErrorClass;
use crate::mcp::ZendeskMcp;
use crate::server::problem;

/// The most of a `/mcp` body read to find which tool an OAuth caller calls (the route's own
/// limit is the same).
const MAX_SCOPE_PEEK: usize = 1024 * 1024;

/// The step: the request as it came (its body read and put back for an OAuth caller), or the
/// refusal to answer.
pub(super) async fn check_scopes(req: Request) -> Result<Request, Response> {
    let access = req.extensions().get::<RulesInForce>().map(|r| r.0.clone());
    let profile = req
        .extensions()
        .get::<std::sync::Arc<AccessProfile>>()
        .cloned();
    let (Some(access), Some(profile)) = (access, profile) else {
        return Ok(req);
    };
    let (Some(rs), Some(oauth)) = (&access.resource_server, &profile.oauth) else {
        return Ok(req);
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SCOPE_PEEK).await else {
        return Err(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorClass::InvalidArgument,
            "the request body is too large",
        ));
    };
    if let Some((tool, scopes)) = beyond_scopes(&access, &profile, &bytes) {
        tracing::warn!(
            target: "audit",
            tool = %tool,
            profile = %profile.name,
            outcome = "insufficient_scope",
            subject = oauth.subject.as_deref(),
            client_id = oauth.client_id.as_deref(),
            "refused"
        );
        let mut r = problem(
            StatusCode::FORBIDDEN,
            ErrorClass::Forbidden,
            format!(
                "the access token's scopes do not grant {tool}: it needs {}",
                scopes.join(" or ")
            ),
        );
        let challenge = rs.challenge(Some("insufficient_scope"), &scopes.join(" "));
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return Err(r);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// For a `tools/call` of a tool the caller's scopes do not grant: the tool and the scopes that
/// would. Anything else is left to the MCP layer.
fn beyond_scopes(
    access: &AccessPolicy,
    profile: &AccessProfile,
    body: &[u8],
) -> Option<(String, Vec<String>)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if v.get("method")?.as_str()? != "tools/call" {
        return None;
    }
    let tool = v.get("params")?.get("name")?.as_str()?.to_owned();
    let read_only = ZendeskMcp::tool_is_read_only(&tool)?;
    if access.scopes_allow(Some(profile), &tool, read_only) {
        return None;
    }
    let scopes = access.oauth.scopes_for(&tool, read_only);
    Some((tool, scopes))
}
