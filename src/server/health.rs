//! `/healthz` (the actors run), `/readyz` (every actor is up and the upstream accepted the
//! credentials; delivery tracking shown), and the credential check behind it.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{AppState, CredentialCheck, problem};
use crate::actors::ActorKind;
use crate::call::Call;
use crate::error::ErrorClass;
use crate::operations::credentials::CredentialVerdict;
use crate::sunco::auth::Scope;

pub(super) async fn healthz(State(state): State<AppState>) -> Response {
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

pub(super) async fn readyz(State(state): State<AppState>) -> Response {
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
    let tracking = state.actors.tracker.tracking().await;
    // Nor does the shared store: a replica without Redis still serves, degraded (an unready
    // fleet would take the whole service down when Redis does), and says so.
    let shared = match state.actors.stores.redis_status() {
        None => json!({"store": "memory"}),
        Some(s) if s.degraded => json!({
            "store": "redis",
            "status": "degraded",
            "reason": s.reason,
            "consequences": "keyed sends, webhooks (503: SunCo retries) and delivery reports (get_delivery_status, list_delivery_failures) are refused as unavailable until Redis answers; other calls go on, within this replica's share of the upstream budget; check that Redis is up and reachable from this replica",
            "replicas": s.replicas,
        }),
        Some(s) => json!({"store": "redis", "status": "ok", "replicas": s.replicas}),
    };
    if missing.is_empty() {
        let status = if shared["status"] == "degraded" {
            "degraded"
        } else {
            "ready"
        };
        (
            StatusCode::OK,
            axum::Json(json!({"status": status, "tracking": tracking, "sharedState": shared})),
        )
            .into_response()
    } else {
        let mut body = ErrorClass::Unavailable.body(format!("not ready: {}", missing.join("; ")));
        body["status"] = json!("not ready");
        body["reasons"] = json!(missing);
        body["tracking"] = json!(tracking);
        body["sharedState"] = shared;
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

/// Checks the credentials against the upstream, again with growing pauses until it gives a
/// verdict, and records it for `/readyz`.
pub(super) async fn check_credentials(state: AppState, scope: Scope, ct: CancellationToken) {
    let mut wait = Duration::from_millis(500);
    let call = Call::internal_until(ct.clone());
    loop {
        let verdict = match state.operations.check_credentials(&call, scope).await {
            Ok(CredentialVerdict::Accepted) => {
                tracing::info!("the upstream accepted the credentials");
                CredentialCheck::Accepted
            }
            Ok(CredentialVerdict::Refused(why)) => {
                tracing::error!("the upstream refused the credentials: {why}");
                CredentialCheck::Refused(why)
            }
            // Stopped on the way (shutdown): nothing learnt, nothing to say.
            Err(_) if ct.is_cancelled() => return,
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
