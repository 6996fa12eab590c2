//! Inspection and control under `/_sim` (a prefix the real API does not use), behind the
//! simulator's own bearer token: request counts, the request log, the stored state, webhook
//! delivery attempts, reset, faults, and filling a conversation (to reach the message limit).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::Sim;
use super::error::{ApiError, ApiResult};
use super::faults::Faults;
use super::lock;
use super::state::World;
use crate::sunco::ids::now_timestamp;
use crate::sunco::wire::{Author, Content, Message, Source};

pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/requests", get(requests))
        .route("/_sim/state", get(state))
        .route("/_sim/webhooks", get(webhook_attempts))
        .route("/_sim/reset", post(reset))
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route(
            "/_sim/apps/{appId}/conversations/{conversationId}/fill",
            post(fill),
        )
}

fn admin(sim: &Sim, headers: &HeaderMap) -> ApiResult<()> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if sim.admin_token.matches(presented.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "The admin routes need Authorization: Bearer <admin token>",
        ))
    }
}

async fn stats(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> ApiResult<Response> {
    admin(&sim, &headers)?;
    let stats = lock(&sim.stats);
    let total: u64 = stats.counts.values().flat_map(|m| m.values()).sum();
    Ok(Json(json!({"total": total, "counts": stats.counts})).into_response())
}

async fn requests(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> ApiResult<Response> {
    admin(&sim, &headers)?;
    let stats = lock(&sim.stats);
    Ok(Json(json!({"requests": stats.log})).into_response())
}

async fn state(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> ApiResult<Response> {
    admin(&sim, &headers)?;
    Ok(Json(sim.world().snapshot()).into_response())
}

async fn webhook_attempts(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> ApiResult<Response> {
    admin(&sim, &headers)?;
    Ok(Json(json!({"attempts": sim.webhooks.attempts()})).into_response())
}

async fn reset(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> ApiResult<Response> {
    admin(&sim, &headers)?;
    sim.reset();
    Ok(Json(json!({})).into_response())
}

async fn get_faults(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> ApiResult<Response> {
    admin(&sim, &headers)?;
    Ok(Json(sim.faults()).into_response())
}

/// Replaces the fault settings; fields left out are off.
async fn put_faults(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    admin(&sim, &headers)?;
    let faults: Faults =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("faults: {e}")))?;
    faults.check().map_err(ApiError::bad_request)?;
    sim.set_faults(faults.clone());
    Ok(Json(faults).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FillBody {
    count: usize,
}

/// Appends `count` short business messages at once (no webhooks): the way to reach the
/// 30,000-message limit without 30,000 requests.
async fn fill(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    admin(&sim, &headers)?;
    let FillBody { count } =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("fill: {e}")))?;
    if count > super::routes::MAX_MESSAGES {
        return Err(ApiError::bad_request("count must be at most 30000"));
    }
    let mut world = sim.world();
    // Borrow the id generator and the apps separately.
    let World { ids, apps, .. } = &mut *world;
    let rec = apps
        .get_mut(&app_id)
        .ok_or_else(ApiError::app_not_found)?
        .conversations
        .get_mut(&conversation_id)
        .ok_or_else(ApiError::conversation_not_found)?;
    let received = now_timestamp();
    for i in 0..count {
        let id = ids.next();
        rec.messages.insert(
            id.clone(),
            Message {
                id,
                received: received.clone(),
                author: Author::business(),
                content: Content::text(format!("filler {i}")),
                source: Source::of("api:conversations", None),
                quoted_message: None,
                metadata: None,
                deleted: None,
            },
        );
    }
    let total = rec.messages.len();
    Ok((StatusCode::OK, Json(json!({"messageCount": total}))).into_response())
}
