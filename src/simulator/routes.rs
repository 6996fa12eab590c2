//! The REST endpoints: paths, status codes, wrapping and error bodies as the spec gives them.
//!
//! Each handler authenticates, checks its input with [`super::validate`], changes the world under
//! one short lock (never held across an await) and queues the webhook events the change causes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::Sim;
use super::error::{ApiError, ApiResult};
use super::state::{App, ConversationRecord, UserRecord, World};
use crate::sunco::ids::now_timestamp;
use crate::sunco::paging::{Cursor, Page};
use crate::sunco::wire::{
    Conversation, ConversationTruncated, ConversationType, Event, Links, Meta,
};

/// A JSON request body may be at most 100 KB.
pub(crate) const MAX_JSON_BODY: usize = 100 * 1024;
/// A conversation holds at most this many messages.
pub(crate) const MAX_MESSAGES: usize = 30_000;

type Q = Query<BTreeMap<String, String>>;

pub(crate) fn router() -> Router<Arc<Sim>> {
    let app = "/v2/apps/{appId}";
    Router::new()
        .route(&format!("{app}/conversations"), get(list_conversations).post(create_conversation))
        .route(
            &format!("{app}/conversations/{{conversationId}}"),
            get(get_conversation).patch(update_conversation).delete(delete_conversation),
        )
        .route(
            &format!("{app}/conversations/{{conversationId}}/participants"),
            get(list_participants),
        )
        .route(
            &format!("{app}/conversations/{{conversationId}}/messages"),
            get(list_messages).post(post_message).delete(delete_all_messages),
        )
        .route(
            &format!("{app}/conversations/{{conversationId}}/messages/{{messageId}}"),
            axum::routing::delete(delete_message),
        )
        .route(
            &format!("{app}/conversations/{{conversationId}}/activity"),
            axum::routing::post(post_activity),
        )
        .route(
            &format!("{app}/conversations/{{conversationId}}/passControl"),
            control_route(ControlAction::Pass),
        )
        .route(
            &format!("{app}/conversations/{{conversationId}}/offerControl"),
            control_route(ControlAction::Offer),
        )
        .route(
            &format!("{app}/conversations/{{conversationId}}/acceptControl"),
            control_route(ControlAction::Accept),
        )
        .route(
            &format!("{app}/conversations/{{conversationId}}/releaseControl"),
            control_route(ControlAction::Release),
        )
        .route(&format!("{app}/users"), get(list_users).post(create_user))
        .route(
            &format!("{app}/users/{{userIdOrExternalId}}"),
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route(&format!("{app}/switchboards"), get(list_switchboards).post(create_switchboard))
        .route(
            &format!("{app}/switchboards/{{switchboardId}}"),
            axum::routing::patch(update_switchboard).delete(delete_switchboard),
        )
        .route(
            &format!("{app}/switchboards/{{switchboardId}}/switchboardIntegrations"),
            get(list_switchboard_integrations).post(create_switchboard_integration),
        )
        .route(
            &format!("{app}/switchboards/{{switchboardId}}/switchboardIntegrations/{{switchboardIntegrationId}}"),
            axum::routing::patch(update_switchboard_integration).delete(delete_switchboard_integration),
        )
        .route(&format!("{app}/integrations"), get(list_integrations))
        .route(&format!("{app}/integrations/{{integrationId}}"), get(get_integration))
        .route(
            &format!("{app}/integrations/{{integrationId}}/webhooks"),
            get(list_webhooks).post(create_webhook),
        )
        .route(
            &format!("{app}/integrations/{{integrationId}}/webhooks/{{webhookId}}"),
            get(get_webhook).patch(update_webhook).delete(delete_webhook),
        )
}

mod control;
mod conversations;
mod integrations;
pub(crate) mod messages;
mod switchboards;
mod users;
mod webhooks;

use control::*;
use conversations::*;
use integrations::*;
use messages::*;
use switchboards::*;
use users::*;
use webhooks::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, Json(v)).into_response()
}

fn empty() -> Response {
    ok(json!({}))
}

/// Parses a JSON body: at most 100 KB, `Content-Type: application/json`, an object.
fn body_json(headers: &HeaderMap, body: &Bytes, optional: bool) -> ApiResult<Value> {
    if body.len() > MAX_JSON_BODY {
        return Err(too_large());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return if optional {
            Ok(Value::Null)
        } else {
            Err(ApiError::bad_request("A JSON request body is required"))
        };
    }
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err(ApiError::bad_request(
            "Content-Type must be application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))
}

pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The request body must not exceed 100kb",
    )
}

fn app<'a>(world: &'a World, app_id: &str) -> ApiResult<&'a App> {
    world.apps.get(app_id).ok_or_else(ApiError::app_not_found)
}

fn app_mut<'a>(world: &'a mut World, app_id: &str) -> ApiResult<&'a mut App> {
    world
        .apps
        .get_mut(app_id)
        .ok_or_else(ApiError::app_not_found)
}

fn page_from(q: &BTreeMap<String, String>) -> ApiResult<Page> {
    Page::parse(
        q.get("page[after]").map(String::as_str),
        q.get("page[before]").map(String::as_str),
        q.get("page[size]").map(String::as_str),
    )
    .map_err(|_| ApiError::bad_request("Invalid page query parameters"))
}

/// One page of `items` (already in id order) by the API's cursor rules. With no cursor the
/// first page is returned, or the last when `from_end` (ListMessages starts at the newest).
fn paginate<T: Clone>(
    items: &[(&String, &T)],
    page: &Page,
    size: usize,
    from_end: bool,
    link_base: &str,
) -> (Vec<T>, Meta, Links) {
    let (start, end, direction_before) = match &page.cursor {
        Some(Cursor::After(x)) => {
            let start = items.partition_point(|(id, _)| id.as_str() <= x.as_str());
            (start, (start + size).min(items.len()), false)
        }
        Some(Cursor::Before(x)) => {
            let end = items.partition_point(|(id, _)| id.as_str() < x.as_str());
            (end.saturating_sub(size), end, true)
        }
        None if from_end => (items.len().saturating_sub(size), items.len(), true),
        None => (0, size.min(items.len()), false),
    };
    let slice = &items[start..end];
    let more_before = start > 0;
    let more_after = end < items.len();
    let before_cursor = if more_before {
        slice.first().map(|(id, _)| (*id).clone())
    } else {
        None
    };
    let after_cursor = if more_after {
        slice.last().map(|(id, _)| (*id).clone())
    } else {
        None
    };
    let sep = if link_base.contains('?') { '&' } else { '?' };
    let links = Links {
        prev: before_cursor
            .as_ref()
            .map(|c| format!("{link_base}{sep}page[before]={c}")),
        next: after_cursor
            .as_ref()
            .map(|c| format!("{link_base}{sep}page[after]={c}")),
    };
    let meta = Meta {
        has_more: if direction_before {
            more_before
        } else {
            more_after
        },
        after_cursor,
        before_cursor,
    };
    (
        slice.iter().map(|(_, v)| (*v).clone()).collect(),
        meta,
        links,
    )
}

/// The base of `links` for a list: the public URL of the path with its filters and size.
fn link_base(sim: &Sim, path: &str, q: &BTreeMap<String, String>) -> String {
    let kept: Vec<String> = q
        .iter()
        .filter(|(k, _)| k.starts_with("filter[") || k.as_str() == "page[size]")
        .map(|(k, v)| format!("{k}={}", crate::sunco::path::query_value(v)))
        .collect();
    let base = format!("{}{path}", sim.public_url());
    if kept.is_empty() {
        base
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

fn conversation<'a>(app: &'a App, id: &str) -> ApiResult<&'a ConversationRecord> {
    app.conversations
        .get(id)
        .ok_or_else(ApiError::conversation_not_found)
}

fn user_of<'a>(app: &'a App, id_or_ext: &str) -> ApiResult<&'a UserRecord> {
    app.find_user_id(id_or_ext)
        .and_then(|id| app.users.get(&id))
        .ok_or_else(ApiError::user_not_found)
}

/// `conversation:create`'s payload: the conversation, why it was created (`creationReason`),
/// and for a personal conversation its user (`user_id`, the first participant).
fn conversation_created(
    app: &App,
    conv: &Conversation,
    reason: &str,
    user_id: Option<&str>,
) -> Value {
    let mut payload = json!({
        "conversation": ConversationTruncated::from(conv),
        "creationReason": reason,
    });
    if conv.kind == ConversationType::Personal
        && let Some(u) = user_id.and_then(|u| app.users.get(u))
    {
        payload["user"] = json!(u.user);
    }
    payload
}

/// Queues `event` for every webhook of the app whose triggers match.
fn emit(sim: &Sim, world: &World, app: &App, kind: &str, payload: Value) {
    emit_at(sim, world, app, kind, payload, now_timestamp());
}

/// [`emit`] for an event that happened at `created_at` (ISO 8601).
fn emit_at(sim: &Sim, world: &World, app: &App, kind: &str, payload: Value, created_at: String) {
    let event = Event {
        id: world.ids.next(),
        kind: kind.to_owned(),
        created_at,
        payload,
    };
    for hooks in app.webhooks.values() {
        for hook in hooks {
            if hook.triggers.iter().any(|t| t == kind || t == "*") {
                sim.webhooks.emit(
                    super::webhooks::Target {
                        app_id: app.id.clone(),
                        webhook_id: hook.id.clone(),
                        url: hook.target.clone(),
                        secret: hook.secret.clone().unwrap_or_default(),
                    },
                    event.clone(),
                );
            }
        }
    }
}

fn merge_nullable(target: &mut Option<String>, body: &Map<String, Value>, key: &str) {
    match body.get(key) {
        Some(Value::Null) => *target = None,
        Some(Value::String(s)) => *target = Some(s.clone()),
        _ => {}
    }
}

fn metadata_of(body: &Map<String, Value>) -> Option<Option<Map<String, Value>>> {
    match body.get("metadata") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Object(m)) => Some(Some(m.clone())),
        Some(_) => None,
    }
}
