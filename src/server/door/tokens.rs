//! The second layer: the bearer token. A static token or an OAuth access token names the
//! caller's profile, which goes along with the request (with the access rules it was read
//! under, so the layers after this one judge by the same rules); a missing or wrong token is
//! 401 with `WWW-Authenticate`, a caller past its rate 429, and an authorization server that
//! cannot be read 503.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::access::{AccessPolicy, Refusal};
use crate::error::ErrorClass;
use crate::server::{AppState, problem, problem_retry};

/// The access rules a request was authenticated under (a settings reload meanwhile changes
/// nothing for it).
#[derive(Clone)]
pub(super) struct RulesInForce(pub(super) Arc<AccessPolicy>);

/// The step: the request with the caller's profile (and the rules it was read under), the
/// request as it came without tokens, or the refusal to answer.
pub(super) async fn authenticate(state: &AppState, mut req: Request) -> Result<Request, Response> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let access = state.live.get().access.clone();
    match access
        .authenticate(header.as_deref(), &*state.actors.stores.inbound)
        .await
    {
        Ok(Some(profile)) => {
            req.extensions_mut().insert(profile);
            req.extensions_mut().insert(RulesInForce(access));
            Ok(req)
        }
        Ok(None) => Ok(req),
        Err(refusal) => {
            // Credentials of any kind (`Basic …` too); a bare `Bearer` is none.
            let presented = header.as_deref().is_some_and(|h| {
                let h = h.trim();
                !h.is_empty() && !h.eq_ignore_ascii_case("bearer")
            });
            let reason = match &refusal {
                Refusal::Unauthenticated | Refusal::InvalidToken(_) => "unauthenticated",
                Refusal::RateLimited(_) => "rate_limited",
                Refusal::VerifierUnavailable(_) => "verifier_unavailable",
            };
            let metrics = &state.actors.metrics;
            metrics
                .refused
                .add(1, &[crate::telemetry::kv("reason", reason)]);
            Err(refused(&access, refusal, presented, &From::from(&req)))
        }
    }
}

/// Who knocked: the peer's address and the `X-Forwarded-For` a proxy in front added (as given),
/// for the audit record of a refusal.
struct Knocker {
    address: Option<String>,
    forwarded_for: Option<String>,
}

impl From<&Request> for Knocker {
    fn from(req: &Request) -> Self {
        Self {
            address: req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
            forwarded_for: req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect()),
        }
    }
}

/// The answer to a refused token, audited with who knocked.
fn refused(access: &AccessPolicy, refusal: Refusal, presented: bool, who: &Knocker) -> Response {
    let (client_address, forwarded_for) = (who.address.as_deref(), who.forwarded_for.as_deref());
    match refusal {
        Refusal::Unauthenticated | Refusal::InvalidToken(_) => {
            let why = match &refusal {
                Refusal::InvalidToken(why) => why.clone(),
                _ => "a valid bearer token is required: send Authorization: Bearer <token>"
                    .to_owned(),
            };
            tracing::warn!(target: "audit", outcome = "unauthenticated", reason = %why, client_address, forwarded_for, "refused a /mcp request without a valid bearer token");
            let mut r = problem(StatusCode::UNAUTHORIZED, ErrorClass::Unauthorized, why);
            // With OAuth, the challenge says where to learn how to get a token (RFC 9728 §5.1).
            let challenge = match &access.resource_server {
                Some(rs) => rs.challenge(
                    presented.then_some("invalid_token"),
                    &access.oauth.scope_names().join(" "),
                ),
                // No `error` for a request without credentials (RFC 6750 §3.1).
                None if presented => {
                    "Bearer realm=\"zendesk-messaging-mcp\", error=\"invalid_token\"".to_owned()
                }
                None => "Bearer realm=\"zendesk-messaging-mcp\"".to_owned(),
            };
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            r
        }
        Refusal::VerifierUnavailable(why) => {
            // The server's fault, not the caller's: 503, and the details only in the log.
            tracing::error!(reason = %why, "cannot verify access tokens: the authorization server's metadata or keys are unavailable");
            problem_retry(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorClass::Unavailable,
                "the server cannot verify access tokens right now (its authorization server's keys are unavailable); retry in a moment",
                5,
            )
        }
        Refusal::RateLimited(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            tracing::warn!(target: "audit", outcome = "rate_limited", retry_after_secs = secs, client_address, forwarded_for, "refused a /mcp request past its caller's rate limit");
            problem_retry(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorClass::RateLimited,
                format!(
                    "this caller's request rate is exceeded (its token's, or its OAuth client's, rate_limit); retry after {secs} s"
                ),
                secs,
            )
        }
    }
}
