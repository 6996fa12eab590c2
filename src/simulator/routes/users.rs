//! Users.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, json};

use super::{Q, app, app_mut, body_json, created, empty, merge_nullable, metadata_of, ok, user_of};
use crate::simulator::auth::{ALL_SCOPES, authorize};
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::state::UserRecord;
use crate::simulator::{Sim, validate};
use crate::sunco::ids::now_timestamp;
use crate::sunco::wire::{ConversationType, Profile, User};

pub(super) async fn list_users(
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

pub(super) async fn create_user(
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

pub(super) async fn get_user(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, ALL_SCOPES)?;
    let u = user_of(app(&world, &app_id)?, &user_id)?;
    Ok(ok(json!({ "user": u.user })))
}

pub(super) async fn update_user(
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

pub(super) async fn delete_user(
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
