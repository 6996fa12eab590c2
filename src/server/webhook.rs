//! `POST /webhooks/sunco`: the events Sunshine Conversations sends, checked by `X-API-Key` in
//! constant time, read one by one (every payload the spec allows), and answered once the
//! delivery tracker has stored them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{AppState, problem};
use crate::error::ErrorClass;
use crate::sunco::events;

pub(super) async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
