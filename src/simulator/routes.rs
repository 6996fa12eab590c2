//! The REST endpoints: paths, status codes, wrapping and error bodies as the spec gives them.
//!
//! Each handler authenticates, checks its input with [`super::validate`], changes the world under
//! one short lock (never held across an await) and queues the webhook events the change causes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::Sim;
use super::auth::{ALL_SCOPES, APP_OR_ACCOUNT, Caller, INTEGRATION_OR_APP, authorize};
use super::delivery;
use super::error::{ApiError, ApiResult};
use super::state::{App, ConversationRecord, UserRecord, World};
use super::validate;
use crate::sunco::auth::Scope;
use crate::sunco::ids::now_timestamp;
use crate::sunco::paging::{Cursor, MESSAGE_PAGE_SIZE, PAGE_SIZE_DEFAULT, Page};
use crate::sunco::wire::{
    Author, AuthorType, Content, ConversationTruncated, ConversationType, DeliveryDestination,
    DeliveryPayload, DeliveryUser, Event, Integration, Links, Message, MessageRef, Meta, Profile,
    Source, Switchboard, SwitchboardIntegration, User, Webhook, event_type,
};

/// A JSON request body may be at most 100 KB.
pub const MAX_JSON_BODY: usize = 100 * 1024;
/// A conversation holds at most this many messages.
pub const MAX_MESSAGES: usize = 30_000;

type Q = Query<BTreeMap<String, String>>;

pub fn router() -> Router<Arc<Sim>> {
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

pub fn too_large() -> ApiError {
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

/// Queues `event` for every webhook of the app whose triggers match.
fn emit(sim: &Sim, world: &World, app: &App, kind: &str, payload: Value) {
    let event = Event {
        id: world.ids.next(),
        kind: kind.to_owned(),
        created_at: now_timestamp(),
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

// ---------------------------------------------------------------------------------------------
// Conversations

async fn list_conversations(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    Query(q): Q,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let page = page_from(&q)?;
    let app = app(&world, &app_id)?;
    let user = match (q.get("filter[userId]"), q.get("filter[userExternalId]")) {
        (Some(id), None) => app.users.get(id).ok_or_else(ApiError::user_not_found)?,
        (None, Some(ext)) => app
            .user_by_external_id(ext)
            .ok_or_else(ApiError::user_not_found)?,
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Use filter[userId] or filter[userExternalId], not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "filter[userId] or filter[userExternalId] is required",
            ));
        }
    };
    let uid = user.user.id.clone();
    let items: Vec<(&String, &crate::sunco::wire::Conversation)> = app
        .conversations
        .iter()
        .filter(|(_, c)| c.participants.iter().any(|p| p.user_id == uid))
        .map(|(id, c)| (id, &c.conversation))
        .collect();
    let size = page.size.unwrap_or(PAGE_SIZE_DEFAULT) as usize;
    let base = link_base(&sim, &format!("/v2/apps/{app_id}/conversations"), &q);
    let (list, meta, links) = paginate(&items, &page, size, false, &base);
    Ok(ok(
        json!({"conversations": list, "meta": meta, "links": links}),
    ))
}

async fn create_conversation(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let body = body_json(&headers, &body, false)?;
    validate::conversation_create(&body)?;
    let kind = match body["type"].as_str() {
        Some("sdkGroup") => ConversationType::SdkGroup,
        _ => ConversationType::Personal,
    };
    let app_ref = app(&world, &app_id)?;
    let mut user_ids = Vec::new();
    for p in body["participants"].as_array().into_iter().flatten() {
        let id = p["userId"]
            .as_str()
            .and_then(|id| app_ref.users.get(id).map(|u| u.user.id.clone()))
            .or_else(|| {
                p["userExternalId"]
                    .as_str()
                    .and_then(|ext| app_ref.user_by_external_id(ext))
                    .map(|u| u.user.id.clone())
            })
            .ok_or_else(ApiError::user_not_found)?;
        user_ids.push(id);
    }
    let id = world.ids.next();
    let participants: Vec<_> = user_ids
        .iter()
        .filter_map(|u| app_ref.participant_for(&world.ids, u))
        .collect();
    let is_default = kind == ConversationType::Personal
        && user_ids
            .first()
            .is_some_and(|u| app_ref.default_conversation_of(u).is_none());
    let mut conv = app_ref.new_conversation(id.clone(), kind);
    conv.is_default = is_default;
    let o = body.as_object().cloned().unwrap_or_default();
    merge_nullable(&mut conv.display_name, &o, "displayName");
    merge_nullable(&mut conv.description, &o, "description");
    merge_nullable(&mut conv.icon_url, &o, "iconUrl");
    conv.metadata = metadata_of(&o).flatten();
    let app = app_mut(&mut world, &app_id)?;
    app.conversations.insert(
        id,
        ConversationRecord {
            conversation: conv.clone(),
            participants,
            messages: BTreeMap::new(),
        },
    );
    Ok(created(json!({ "conversation": conv })))
}

async fn get_conversation(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let c = conversation(app(&world, &app_id)?, &conversation_id)?;
    Ok(ok(json!({ "conversation": c.conversation })))
}

async fn update_conversation(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let body = body_json(&headers, &body, false)?;
    validate::conversation_update(&body)?;
    let app = app_mut(&mut world, &app_id)?;
    let rec = app
        .conversations
        .get_mut(&conversation_id)
        .ok_or_else(ApiError::conversation_not_found)?;
    let o = body.as_object().cloned().unwrap_or_default();
    let c = &mut rec.conversation;
    merge_nullable(&mut c.display_name, &o, "displayName");
    merge_nullable(&mut c.description, &o, "description");
    merge_nullable(&mut c.icon_url, &o, "iconUrl");
    if let Some(m) = metadata_of(&o) {
        c.metadata = m;
    }
    Ok(ok(json!({ "conversation": c })))
}

async fn delete_conversation(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let app = app_mut(&mut world, &app_id)?;
    let rec = conversation(app, &conversation_id)?;
    if rec.conversation.is_default {
        return Err(ApiError::bad_request(format!(
            "Conversation {conversation_id} cannot be deleted because it is the default."
        )));
    }
    app.conversations.remove(&conversation_id);
    Ok(empty())
}

async fn list_participants(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Query(q): Q,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let page = page_from(&q)?;
    let rec = conversation(app(&world, &app_id)?, &conversation_id)?;
    let items: Vec<_> = rec.participants.iter().map(|p| (&p.id, p)).collect();
    let size = page.size.unwrap_or(PAGE_SIZE_DEFAULT) as usize;
    let base = link_base(
        &sim,
        &format!("/v2/apps/{app_id}/conversations/{conversation_id}/participants"),
        &q,
    );
    let (list, meta, links) = paginate(&items, &page, size, false, &base);
    Ok(ok(
        json!({"participants": list, "meta": meta, "links": links}),
    ))
}

// ---------------------------------------------------------------------------------------------
// Messages

async fn list_messages(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    Query(q): Q,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let page = page_from(&q)?;
    let app = app(&world, &app_id)?;
    let rec = app
        .conversations
        .get(&conversation_id)
        .ok_or_else(ApiError::resource_not_found)?;
    let items: Vec<_> = rec.messages.iter().collect();
    let base = format!(
        "{}/v2/apps/{app_id}/conversations/{conversation_id}/messages",
        sim.public_url()
    );
    // page[size] is ignored: the page is always 100, starting from the newest.
    let (list, meta, links) = paginate(&items, &page, MESSAGE_PAGE_SIZE, true, &base);
    Ok(ok(json!({"messages": list, "meta": meta, "links": links})))
}

/// Converts write-only `markdownText` into `htmlText`, as the API stores it.
fn store_content(mut content: Value) -> Value {
    if let Some(o) = content.as_object_mut()
        && let Some(Value::String(md)) = o.remove("markdownText")
    {
        let escaped = md
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        o.insert(
            "htmlText".to_owned(),
            Value::String(format!("<p>{escaped}</p>")),
        );
        if !o.contains_key("text") {
            o.insert("text".to_owned(), Value::String(md));
        }
    }
    content
}

async fn post_message(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let body = body_json(&headers, &body, false)?;
    validate::message_post(&body)?;
    let app_ref = app(&world, &app_id)?;
    let rec = conversation(app_ref, &conversation_id)?;
    if rec.messages.len() >= MAX_MESSAGES {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "locked",
            "Message limit of 30000 per conversation reached.",
        ));
    }
    let author_v = &body["author"];
    let author_type = if author_v["type"] == "user" {
        AuthorType::User
    } else {
        AuthorType::Business
    };
    let mut author = Author::business();
    author.kind = author_type;
    author.subtypes = author_v["subtypes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    author.display_name = author_v["displayName"].as_str().map(str::to_owned);
    author.avatar_url = author_v["avatarUrl"].as_str().map(str::to_owned);
    if author_type == AuthorType::User {
        let key = author_v["userId"]
            .as_str()
            .or_else(|| author_v["userExternalId"].as_str())
            .unwrap_or_default();
        let user = user_of(app_ref, key)?;
        if !rec.participants.iter().any(|p| p.user_id == user.user.id) {
            return Err(ApiError::bad_request(
                "author: the user is not a participant of this conversation",
            ));
        }
        author.user_id = Some(user.user.id.clone());
    }
    // Where delivery goes: an explicit destination, or each participant's primary client.
    let destination = body.get("destination").filter(|d| d.is_object());
    let mut targets: Vec<(&UserRecord, Option<&super::state::Client>)> = Vec::new();
    if author_type == AuthorType::Business {
        if destination.is_some() && rec.conversation.kind != ConversationType::Personal {
            return Err(ApiError::bad_request(
                "destination applies only to personal conversations",
            ));
        }
        for p in &rec.participants {
            let Some(user) = app_ref.users.get(&p.user_id) else {
                continue;
            };
            let client = match destination {
                Some(d) if d["integrationType"] == "none" => None,
                Some(d) => {
                    let found = user.clients.iter().find(|c| {
                        d["integrationId"].as_str() == Some(c.integration_id.as_str())
                            || d["integrationType"].as_str().is_some_and(|t| {
                                app_ref
                                    .integrations
                                    .get(&c.integration_id)
                                    .is_some_and(|i| i.kind == t)
                            })
                    });
                    if found.is_none() {
                        return Err(ApiError::bad_request(
                            "destination: the user has no client for that integration in this conversation",
                        ));
                    }
                    found
                }
                None => p
                    .client_associations
                    .first()
                    .and_then(|a| user.clients.iter().find(|c| c.id == a.client_id)),
            };
            targets.push((user, client));
        }
    }
    let content_v = store_content(body["content"].clone());
    let content: Content = serde_json::from_value(content_v).map_err(|e| {
        ApiError::bad_request(format!("content is not a valid message content: {e}"))
    })?;
    let message = Message {
        id: world.ids.next(),
        received: now_timestamp(),
        author,
        content,
        source: Source::of("api:conversations", None),
        quoted_message: None,
        metadata: body["metadata"].as_object().cloned(),
        deleted: None,
    };
    let deliveries: Vec<(DeliveryUser, Option<(String, String)>)> = targets
        .iter()
        .map(|(u, c)| {
            (
                DeliveryUser {
                    id: u.user.id.clone(),
                    external_id: u.user.external_id.clone(),
                    authenticated: u.user.authenticated,
                },
                c.map(|c| (c.platform.clone(), c.integration_id.clone())),
            )
        })
        .collect();
    let author_user = message.author.user_id.as_ref().and_then(|id| app_ref.users.get(id)).map(|u| {
        json!({"id": u.user.id, "externalId": u.user.external_id, "authenticated": u.user.authenticated})
    });
    let app = app_mut(&mut world, &app_id)?;
    let Some(rec) = app.conversations.get_mut(&conversation_id) else {
        return Err(ApiError::conversation_not_found());
    };
    rec.messages.insert(message.id.clone(), message.clone());
    rec.conversation.last_updated_at = Some(message.received.clone());
    let truncated = ConversationTruncated::from(&rec.conversation);

    let world = &*world;
    let app = &world.apps[&app_id];
    let mut author_webhook = json!({"type": message.author.kind});
    if let Some(uid) = &message.author.user_id {
        author_webhook["userId"] = json!(uid);
        if let Some(u) = author_user {
            author_webhook["user"] = u;
        }
    }
    let mut message_webhook = json!({
        "id": message.id,
        "received": message.received,
        "author": author_webhook,
        "content": message.content,
        "source": message.source,
    });
    if let Some(m) = &message.metadata {
        message_webhook["metadata"] = json!(m);
    }
    emit(
        &sim,
        world,
        app,
        event_type::MESSAGE,
        json!({"conversation": truncated, "message": message_webhook}),
    );
    for (user, client) in deliveries {
        let Some((channel, integration_id)) = client else {
            continue;
        };
        let payload = |error, is_final| DeliveryPayload {
            user: user.clone(),
            conversation: truncated.clone(),
            message: MessageRef {
                id: message.id.clone(),
            },
            destination: DeliveryDestination {
                kind: channel.clone(),
                integration_id: Some(integration_id.clone()),
            },
            external_messages: None,
            is_final_event: is_final,
            error,
        };
        match delivery::deliver(&channel, message.content.type_name()) {
            Ok(()) => {
                emit(
                    &sim,
                    world,
                    app,
                    event_type::DELIVERY_CHANNEL,
                    json!(payload(None, false)),
                );
                emit(
                    &sim,
                    world,
                    app,
                    event_type::DELIVERY_USER,
                    json!(payload(None, true)),
                );
            }
            Err(e) => emit(
                &sim,
                world,
                app,
                event_type::DELIVERY_FAILURE,
                json!(payload(Some(e), true)),
            ),
        }
    }
    Ok(created(json!({ "messages": [message] })))
}

async fn delete_all_messages(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let app = app_mut(&mut world, &app_id)?;
    let rec = app
        .conversations
        .get_mut(&conversation_id)
        .ok_or_else(ApiError::conversation_not_found)?;
    rec.messages.clear();
    Ok(empty())
}

async fn delete_message(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id, message_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let app = app_mut(&mut world, &app_id)?;
    let rec = app
        .conversations
        .get_mut(&conversation_id)
        .ok_or_else(ApiError::conversation_not_found)?;
    rec.messages
        .remove(&message_id)
        .ok_or_else(|| ApiError::not_found("message_not_found", "Message not found"))?;
    Ok(empty())
}

// ---------------------------------------------------------------------------------------------
// Switchboard actions

#[derive(Clone, Copy)]
enum ControlAction {
    Pass,
    Offer,
    Accept,
    Release,
}

/// The handler of one switchboard action's route.
fn control_route(action: ControlAction) -> axum::routing::MethodRouter<Arc<Sim>> {
    post(
        move |State(sim): State<Arc<Sim>>,
              headers: HeaderMap,
              Path(ids): Path<(String, String)>,
              body: Bytes| { control(action, sim, headers, ids, body) },
    )
}

/// Resolves a control target: by id, then name, then integrationType, or `next`.
fn resolve_target(
    app: &App,
    active: Option<&str>,
    target: &str,
) -> ApiResult<SwitchboardIntegration> {
    let sbis = &app.switchboard_integrations;
    if target == "next" {
        let next = active
            .and_then(|a| sbis.get(a))
            .and_then(|a| a.next_switchboard_integration_id.as_deref())
            .and_then(|n| sbis.get(n));
        return next.cloned().ok_or_else(|| {
            ApiError::bad_request(
                "Cannot resolve next: the active switchboard integration has no nextSwitchboardIntegrationId",
            )
        });
    }
    if let Some(s) = sbis.get(target) {
        return Ok(s.clone());
    }
    if let Some(s) = sbis.values().find(|s| s.name == target) {
        return Ok(s.clone());
    }
    let by_type: Vec<_> = sbis
        .values()
        .filter(|s| s.integration_type == target)
        .collect();
    match by_type.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ApiError::bad_request(format!(
            "No switchboard integration matches {target:?} by id, name or integrationType"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "{target:?} matches several switchboard integrations by integrationType; use an id or name"
        ))),
    }
}

async fn control(
    action: ControlAction,
    sim: Arc<Sim>,
    headers: HeaderMap,
    (app_id, conversation_id): (String, String),
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    let caller: Caller = authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let needs_target = matches!(action, ControlAction::Pass | ControlAction::Offer);
    let body = body_json(&headers, &body, !needs_target)?;
    let target = if needs_target {
        Some(validate::control_target(&body)?)
    } else {
        validate::control(&body)?;
        None
    };
    let app_ref = app(&world, &app_id)?;
    let rec = conversation(app_ref, &conversation_id)?;
    let switchboard = app_ref
        .switchboard
        .as_ref()
        .ok_or_else(ApiError::switchboard_not_found)?;
    if !switchboard.enabled {
        return Err(ApiError::bad_request(
            "The switchboard is disabled: enable it before changing control",
        ));
    }
    let mut conv = rec.conversation.clone();
    let active_id = conv
        .active_switchboard_integration
        .as_ref()
        .map(|a| a.id.clone());
    let is_caller = |sbi: Option<&crate::sunco::wire::SwitchboardIntegrationRef>| {
        sbi.is_some_and(|s| Some(&s.integration_id) == caller.integration_id.as_ref())
    };
    let kind = match action {
        ControlAction::Pass => {
            let t = resolve_target(
                app_ref,
                active_id.as_deref(),
                target.as_deref().unwrap_or_default(),
            )?;
            conv.active_switchboard_integration = Some(t.as_ref_on_conversation());
            conv.pending_switchboard_integration = None;
            event_type::PASS_CONTROL
        }
        ControlAction::Offer => {
            let t = resolve_target(
                app_ref,
                active_id.as_deref(),
                target.as_deref().unwrap_or_default(),
            )?;
            if active_id.as_deref() == Some(t.id.as_str()) {
                return Err(ApiError::bad_request(
                    "Cannot offer control to the switchboard integration that is already active",
                ));
            }
            conv.pending_switchboard_integration = Some(t.as_ref_on_conversation());
            event_type::OFFER_CONTROL
        }
        ControlAction::Accept => {
            let Some(pending) = conv.pending_switchboard_integration.take() else {
                return Err(ApiError::bad_request(
                    "There is no pending switchboard integration to accept control",
                ));
            };
            if caller.scope == Scope::Integration && !is_caller(Some(&pending)) {
                return Err(ApiError::forbidden(
                    "Only the pending switchboard integration can accept control",
                ));
            }
            conv.active_switchboard_integration = Some(pending);
            event_type::ACCEPT_CONTROL
        }
        ControlAction::Release => {
            if caller.scope == Scope::Integration
                && !is_caller(conv.active_switchboard_integration.as_ref())
            {
                return Err(ApiError::forbidden(
                    "Only the active switchboard integration can release control",
                ));
            }
            conv.active_switchboard_integration = None;
            conv.pending_switchboard_integration = None;
            event_type::RELEASE_CONTROL
        }
    };
    let app = app_mut(&mut world, &app_id)?;
    if let Some(rec) = app.conversations.get_mut(&conversation_id) {
        rec.conversation = conv.clone();
    }
    let world = &*world;
    let mut payload = json!({"conversation": ConversationTruncated::from(&conv)});
    if let Some(m) = body.get("metadata").filter(|m| m.is_object()) {
        payload["metadata"] = m.clone();
    }
    emit(&sim, world, &world.apps[&app_id], kind, payload);
    Ok(empty())
}

// ---------------------------------------------------------------------------------------------
// Users

async fn list_users(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    Query(q): Q,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let Some(email) = q.get("filter[identities.email]") else {
        return Err(ApiError::bad_request(
            "filter[identities.email] is required",
        ));
    };
    let users: Vec<&User> = app(&world, &app_id)?
        .users
        .values()
        .filter(|u| {
            u.user
                .identities
                .iter()
                .any(|i| i.kind == "email" && i.value.eq_ignore_ascii_case(email))
        })
        .map(|u| &u.user)
        .collect();
    Ok(ok(json!({ "users": users })))
}

async fn create_user(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let body = body_json(&headers, &body, false)?;
    validate::user_create(&body)?;
    let id = world.ids.next();
    let app = app_mut(&mut world, &app_id)?;
    let external_id = body["externalId"].as_str().map(str::to_owned);
    if let Some(ext) = &external_id
        && app.user_by_external_id(ext).is_some()
    {
        return Err(ApiError::conflict("User already exists"));
    }
    let profile: Profile = serde_json::from_value(body["profile"].clone()).unwrap_or_default();
    let user = User {
        id: id.clone(),
        external_id,
        zendesk_id: None,
        brand_id: body["brandId"].as_str().map(str::to_owned),
        authenticated: false,
        signed_up_at: Some(
            body["signedUpAt"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(now_timestamp),
        ),
        to_be_retained: body["toBeRetained"].as_bool(),
        profile,
        metadata: body["metadata"].as_object().cloned().unwrap_or_default(),
        identities: Vec::new(),
    };
    app.users.insert(
        id,
        UserRecord {
            user: user.clone(),
            clients: Vec::new(),
        },
    );
    Ok(created(json!({ "user": user })))
}

async fn get_user(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let u = user_of(app(&world, &app_id)?, &user_id)?;
    Ok(ok(json!({ "user": u.user })))
}

async fn update_user(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let body = body_json(&headers, &body, false)?;
    validate::user_update(&body)?;
    let app = app_mut(&mut world, &app_id)?;
    let id = app
        .find_user_id(&user_id)
        .ok_or_else(ApiError::user_not_found)?;
    let rec = app
        .users
        .get_mut(&id)
        .ok_or_else(ApiError::user_not_found)?;
    let u = &mut rec.user;
    if let Some(s) = body["signedUpAt"].as_str() {
        u.signed_up_at = Some(s.to_owned());
    }
    if let Some(b) = body["toBeRetained"].as_bool() {
        u.to_be_retained = Some(b);
    }
    if let Some(p) = body["profile"].as_object() {
        let pr = &mut u.profile;
        merge_nullable(&mut pr.given_name, p, "givenName");
        merge_nullable(&mut pr.surname, p, "surname");
        merge_nullable(&mut pr.email, p, "email");
        merge_nullable(&mut pr.avatar_url, p, "avatarUrl");
        merge_nullable(&mut pr.locale, p, "locale");
    }
    if let Some(m) = metadata_of(body.as_object().unwrap_or(&Map::new())) {
        u.metadata = m.unwrap_or_default();
    }
    Ok(ok(json!({ "user": u })))
}

async fn delete_user(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let app = app_mut(&mut world, &app_id)?;
    let id = app
        .find_user_id(&user_id)
        .ok_or_else(ApiError::user_not_found)?;
    app.users.remove(&id);
    // The user's personal conversations go with them; group conversations lose a participant.
    app.conversations.retain(|_, c| {
        !(c.conversation.kind == ConversationType::Personal
            && c.participants.iter().any(|p| p.user_id == id))
    });
    for c in app.conversations.values_mut() {
        c.participants.retain(|p| p.user_id != id);
    }
    Ok(empty())
}

// ---------------------------------------------------------------------------------------------
// Switchboards

async fn list_switchboards(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let list: Vec<&Switchboard> = app(&world, &app_id)?.switchboard.iter().collect();
    Ok(ok(json!({ "switchboards": list })))
}

async fn create_switchboard(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let id = world.ids.next();
    let app = app_mut(&mut world, &app_id)?;
    if app.switchboard.is_some() {
        return Err(ApiError::bad_request(
            "Only one switchboard can be created per app",
        ));
    }
    let sb = Switchboard {
        id,
        enabled: false,
        default_switchboard_integration_id: None,
    };
    app.switchboard = Some(sb.clone());
    Ok(created(json!({ "switchboard": sb })))
}

fn switchboard_mut<'a>(app: &'a mut App, id: &str) -> ApiResult<&'a mut Switchboard> {
    app.switchboard
        .as_mut()
        .filter(|s| s.id == id)
        .ok_or_else(ApiError::switchboard_not_found)
}

async fn update_switchboard(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, switchboard_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let body = body_json(&headers, &body, false)?;
    validate::switchboard_update(&body)?;
    let app = app_mut(&mut world, &app_id)?;
    if let Some(d) = body["defaultSwitchboardIntegrationId"].as_str()
        && !app.switchboard_integrations.contains_key(d)
    {
        return Err(ApiError::switchboard_integration_not_found());
    }
    let sb = switchboard_mut(app, &switchboard_id)?;
    if let Some(e) = body["enabled"].as_bool() {
        sb.enabled = e;
    }
    if let Some(d) = body["defaultSwitchboardIntegrationId"].as_str() {
        sb.default_switchboard_integration_id = Some(d.to_owned());
    }
    Ok(ok(json!({ "switchboard": sb })))
}

async fn delete_switchboard(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, switchboard_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let app = app_mut(&mut world, &app_id)?;
    switchboard_mut(app, &switchboard_id)?;
    app.switchboard = None;
    app.switchboard_integrations.clear();
    for c in app.conversations.values_mut() {
        c.conversation.active_switchboard_integration = None;
        c.conversation.pending_switchboard_integration = None;
    }
    Ok(empty())
}

async fn list_switchboard_integrations(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, switchboard_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let app = app_mut(&mut world, &app_id)?;
    switchboard_mut(app, &switchboard_id)?;
    let list: Vec<&SwitchboardIntegration> = app.switchboard_integrations.values().collect();
    Ok(ok(json!({ "switchboardIntegrations": list })))
}

/// Applies create/update fields to a switchboard integration, resolving the integration.
fn apply_sbi(
    app: &App,
    sbi: &mut SwitchboardIntegration,
    body: &Value,
    id_gen: &crate::sunco::ids::IdGenerator,
) -> ApiResult<()> {
    if let Some(n) = body["name"].as_str() {
        if app
            .switchboard_integrations
            .values()
            .any(|s| s.name == n && s.id != sbi.id)
        {
            return Err(ApiError::conflict(format!(
                "A switchboard integration named {n} already exists"
            )));
        }
        sbi.name = n.to_owned();
    }
    if let Some(iid) = body["integrationId"].as_str() {
        let integration = app
            .integrations
            .get(iid)
            .ok_or_else(ApiError::integration_not_found)?;
        sbi.integration_id = iid.to_owned();
        sbi.integration_type = integration.kind.clone();
    } else if let Some(t) = body["integrationType"].as_str() {
        // An OAuth integration (e.g. zd:agentWorkspace) is named by its client id.
        sbi.integration_type = t.to_owned();
        if sbi.integration_id.is_empty() {
            sbi.integration_id = app
                .integrations
                .values()
                .find(|i| i.kind == t)
                .map(|i| i.id.clone())
                .unwrap_or_else(|| id_gen.next());
        }
    }
    if let Some(b) = body["deliverStandbyEvents"].as_bool() {
        sbi.deliver_standby_events = b;
    }
    match body.get("nextSwitchboardIntegrationId") {
        Some(Value::Null) => sbi.next_switchboard_integration_id = None,
        Some(Value::String(n)) => {
            if !app.switchboard_integrations.contains_key(n) {
                return Err(ApiError::switchboard_integration_not_found());
            }
            sbi.next_switchboard_integration_id = Some(n.clone());
        }
        _ => {}
    }
    match body.get("messageHistoryCount") {
        Some(Value::Null) => sbi.message_history_count = None,
        Some(v) => sbi.message_history_count = v.as_u64().map(|n| n as u8),
        None => {}
    }
    Ok(())
}

async fn create_switchboard_integration(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, switchboard_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let body = body_json(&headers, &body, false)?;
    validate::switchboard_integration(&body, true)?;
    let app_ref = app(&world, &app_id)?;
    if app_ref
        .switchboard
        .as_ref()
        .is_none_or(|s| s.id != switchboard_id)
    {
        return Err(ApiError::switchboard_not_found());
    }
    if app_ref.switchboard_integrations.len() >= 10 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_many_switchboard_integrations",
            "A switchboard can have at most 10 switchboard integrations",
        ));
    }
    let mut sbi = SwitchboardIntegration {
        id: world.ids.next(),
        name: String::new(),
        integration_id: String::new(),
        integration_type: String::new(),
        deliver_standby_events: true,
        next_switchboard_integration_id: None,
        message_history_count: None,
    };
    apply_sbi(app_ref, &mut sbi, &body, &world.ids)?;
    app_mut(&mut world, &app_id)?
        .switchboard_integrations
        .insert(sbi.id.clone(), sbi.clone());
    Ok(created(json!({ "switchboardIntegration": sbi })))
}

async fn update_switchboard_integration(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, switchboard_id, sbi_id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let body = body_json(&headers, &body, false)?;
    validate::switchboard_integration(&body, false)?;
    let app_ref = app(&world, &app_id)?;
    if app_ref
        .switchboard
        .as_ref()
        .is_none_or(|s| s.id != switchboard_id)
    {
        return Err(ApiError::switchboard_not_found());
    }
    let mut sbi = app_ref
        .switchboard_integrations
        .get(&sbi_id)
        .cloned()
        .ok_or_else(ApiError::switchboard_integration_not_found)?;
    apply_sbi(app_ref, &mut sbi, &body, &world.ids)?;
    let app = app_mut(&mut world, &app_id)?;
    app.switchboard_integrations
        .insert(sbi.id.clone(), sbi.clone());
    // Conversations show the integration's current name and type.
    let r = sbi.as_ref_on_conversation();
    replace_on_conversations(app, &sbi.id, Some(r));
    Ok(ok(json!({ "switchboardIntegration": sbi })))
}

/// Replaces (or clears) a switchboard integration wherever a conversation shows it as active or
/// pending.
fn replace_on_conversations(
    app: &mut App,
    sbi_id: &str,
    with: Option<crate::sunco::wire::SwitchboardIntegrationRef>,
) {
    for c in app.conversations.values_mut() {
        for slot in [
            &mut c.conversation.active_switchboard_integration,
            &mut c.conversation.pending_switchboard_integration,
        ] {
            if slot.as_ref().is_some_and(|s| s.id == sbi_id) {
                *slot = with.clone();
            }
        }
    }
}

async fn delete_switchboard_integration(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, switchboard_id, sbi_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let app = app_mut(&mut world, &app_id)?;
    switchboard_mut(app, &switchboard_id)?;
    app.switchboard_integrations
        .remove(&sbi_id)
        .ok_or_else(ApiError::switchboard_integration_not_found)?;
    for s in app.switchboard_integrations.values_mut() {
        if s.next_switchboard_integration_id.as_deref() == Some(sbi_id.as_str()) {
            s.next_switchboard_integration_id = None;
        }
    }
    if let Some(sb) = app.switchboard.as_mut()
        && sb.default_switchboard_integration_id.as_deref() == Some(sbi_id.as_str())
    {
        sb.default_switchboard_integration_id = None;
    }
    replace_on_conversations(app, &sbi_id, None);
    Ok(empty())
}

// ---------------------------------------------------------------------------------------------
// Integrations

pub const INTEGRATION_TYPES: &[&str] = &[
    "android",
    "apple",
    "custom",
    "instagram",
    "ios",
    "line",
    "mailgun",
    "messagebird",
    "messenger",
    "telegram",
    "twilio",
    "twitter",
    "unity",
    "viber",
    "web",
    "whatsapp",
];

/// An integration as the API returns it; custom integrations carry their webhooks.
fn render_integration(app: &App, i: &Integration) -> Value {
    let mut v = json!(i);
    if i.kind == "custom" {
        v["webhooks"] = json!(app.webhooks.get(&i.id).cloned().unwrap_or_default());
    }
    v
}

async fn list_integrations(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    Query(q): Q,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let page = page_from(&q)?;
    let types: Option<Vec<&str>> = q
        .get("filter[types]")
        .map(|t| t.split(',').map(str::trim).collect());
    if let Some(ts) = &types
        && ts.iter().any(|t| !INTEGRATION_TYPES.contains(t))
    {
        return Err(ApiError::bad_request("Invalid query parameters"));
    }
    let app = app(&world, &app_id)?;
    let items: Vec<_> = app
        .integrations
        .iter()
        .filter(|(_, i)| {
            types
                .as_ref()
                .is_none_or(|ts| ts.contains(&i.kind.as_str()))
        })
        .collect();
    let size = page.size.unwrap_or(PAGE_SIZE_DEFAULT) as usize;
    let base = link_base(&sim, &format!("/v2/apps/{app_id}/integrations"), &q);
    let (list, meta, links) = paginate(&items, &page, size, false, &base);
    let list: Vec<Value> = list.iter().map(|i| render_integration(app, i)).collect();
    Ok(ok(
        json!({"integrations": list, "meta": meta, "links": links}),
    ))
}

async fn get_integration(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let app = app(&world, &app_id)?;
    let i = app
        .integrations
        .get(&integration_id)
        .ok_or_else(ApiError::integration_not_found)?;
    Ok(ok(json!({ "integration": render_integration(app, i) })))
}

// ---------------------------------------------------------------------------------------------
// Webhooks of custom integrations

/// Resolves the integration a webhook route names (`me` for integration keys) and checks that
/// it is a custom integration the caller may manage.
fn webhook_owner(
    world: &World,
    caller: &Caller,
    app_id: &str,
    integration_id: &str,
) -> ApiResult<String> {
    let id = if integration_id == "me" {
        caller
            .integration_id
            .clone()
            .ok_or_else(|| ApiError::bad_request("`me` can only be used with an integration key"))?
    } else {
        integration_id.to_owned()
    };
    if caller.scope == Scope::Integration && caller.integration_id.as_deref() != Some(id.as_str()) {
        return Err(ApiError::forbidden(
            "An integration key can only manage its own webhooks",
        ));
    }
    let app = app(world, app_id)?;
    let integration = app
        .integrations
        .get(&id)
        .ok_or_else(ApiError::integration_not_found)?;
    if integration.kind != "custom" {
        return Err(ApiError::bad_request(
            "Webhooks belong to custom integrations only",
        ));
    }
    Ok(id)
}

async fn list_webhooks(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let world = sim.world();
    let caller = authorize(&world, &headers, &app_id, INTEGRATION_OR_APP)?;
    let id = webhook_owner(&world, &caller, &app_id, &integration_id)?;
    let hooks = app(&world, &app_id)?
        .webhooks
        .get(&id)
        .cloned()
        .unwrap_or_default();
    Ok(ok(json!({ "webhooks": hooks })))
}

fn apply_webhook(hook: &mut Webhook, body: &Value) {
    if let Some(t) = body["target"].as_str() {
        hook.target = t.to_owned();
    }
    if let Some(ts) = body["triggers"].as_array() {
        hook.triggers = ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
    }
    if let Some(b) = body["includeFullUser"].as_bool() {
        hook.include_full_user = b;
    }
    if let Some(b) = body["includeFullSource"].as_bool() {
        hook.include_full_source = b;
    }
}

async fn create_webhook(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, integration_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    let caller = authorize(&world, &headers, &app_id, INTEGRATION_OR_APP)?;
    let id = webhook_owner(&world, &caller, &app_id, &integration_id)?;
    let body = body_json(&headers, &body, false)?;
    validate::webhook(&body, true)?;
    let total: usize = app(&world, &app_id)?.webhooks.values().map(Vec::len).sum();
    if total >= 10 {
        return Err(ApiError::bad_request("An app can have at most 10 webhooks"));
    }
    let mut hook = Webhook {
        id: world.ids.next(),
        version: "v2".to_owned(),
        target: String::new(),
        triggers: Vec::new(),
        secret: Some(format!("{:032x}", rand::random::<u128>())),
        include_full_user: false,
        include_full_source: false,
    };
    apply_webhook(&mut hook, &body);
    app_mut(&mut world, &app_id)?
        .webhooks
        .entry(id)
        .or_default()
        .push(hook.clone());
    Ok(created(json!({ "webhook": hook })))
}

fn find_webhook<'a>(
    app: &'a mut App,
    integration_id: &str,
    webhook_id: &str,
) -> ApiResult<&'a mut Webhook> {
    app.webhooks
        .get_mut(integration_id)
        .and_then(|hooks| hooks.iter_mut().find(|h| h.id == webhook_id))
        .ok_or_else(|| ApiError::not_found("webhook_not_found", "Webhook not found"))
}

async fn get_webhook(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, integration_id, webhook_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    let caller = authorize(&world, &headers, &app_id, INTEGRATION_OR_APP)?;
    let id = webhook_owner(&world, &caller, &app_id, &integration_id)?;
    let hook = find_webhook(app_mut(&mut world, &app_id)?, &id, &webhook_id)?;
    Ok(ok(json!({ "webhook": hook })))
}

async fn update_webhook(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, integration_id, webhook_id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut world = sim.world();
    let caller = authorize(&world, &headers, &app_id, INTEGRATION_OR_APP)?;
    let id = webhook_owner(&world, &caller, &app_id, &integration_id)?;
    let body = body_json(&headers, &body, false)?;
    validate::webhook(&body, false)?;
    let hook = find_webhook(app_mut(&mut world, &app_id)?, &id, &webhook_id)?;
    apply_webhook(hook, &body);
    Ok(ok(json!({ "webhook": hook })))
}

async fn delete_webhook(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, integration_id, webhook_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let mut world = sim.world();
    let caller = authorize(&world, &headers, &app_id, INTEGRATION_OR_APP)?;
    let id = webhook_owner(&world, &caller, &app_id, &integration_id)?;
    let app = app_mut(&mut world, &app_id)?;
    find_webhook(app, &id, &webhook_id)?;
    if let Some(hooks) = app.webhooks.get_mut(&id) {
        hooks.retain(|h| h.id != webhook_id);
    }
    Ok(empty())
}
