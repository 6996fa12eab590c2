//! Conversations.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

use super::{
    Q, app, app_mut, body_json, conversation, conversation_created, created, emit, empty,
    link_base, merge_nullable, metadata_of, ok, page_from, paginate,
};
use crate::simulator::auth::{ALL_SCOPES, authorize};
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::state::ConversationRecord;
use crate::simulator::{Sim, validate};
use crate::sunco::paging::PAGE_SIZE_DEFAULT;
use crate::sunco::wire::{ConversationTruncated, ConversationType, event_type};

pub(super) async fn list_conversations(
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

pub(super) async fn create_conversation(
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
    // `conversation:create`: created through the API, so `creationReason` is `none`; a personal
    // conversation's event carries its user.
    let payload =
        conversation_created(app_ref, &conv, "none", user_ids.first().map(String::as_str));
    let app = app_mut(&mut world, &app_id)?;
    app.conversations.insert(
        id,
        ConversationRecord {
            conversation: conv.clone(),
            participants,
            messages: BTreeMap::new(),
            business_typing: false,
        },
    );
    let world = &*world;
    emit(
        &sim,
        world,
        &world.apps[&app_id],
        event_type::CONVERSATION_CREATE,
        payload,
    );
    Ok(created(json!({ "conversation": conv })))
}

pub(super) async fn get_conversation(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, conversation_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let c = conversation(app(&world, &app_id)?, &conversation_id)?;
    Ok(ok(json!({ "conversation": c.conversation })))
}

pub(super) async fn update_conversation(
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

pub(super) async fn delete_conversation(
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
    let removed = app.conversations.remove(&conversation_id);
    if let Some(rec) = removed {
        let world = &*world;
        emit(
            &sim,
            world,
            &world.apps[&app_id],
            event_type::CONVERSATION_REMOVE,
            json!({"conversation": ConversationTruncated::from(&rec.conversation)}),
        );
    }
    Ok(empty())
}

pub(super) async fn list_participants(
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
