//! Webhooks of custom integrations.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{app, app_mut, body_json, created, empty, ok};
use crate::simulator::auth::{Caller, INTEGRATION_OR_APP, authorize};
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::state::{App, World};
use crate::simulator::{Sim, validate};
use crate::sunco::auth::Scope;
use crate::sunco::wire::Webhook;

/// Resolves the integration a webhook route names (`me` for integration keys) and checks that
/// it is a custom integration the caller may manage.
pub(super) fn webhook_owner(
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

pub(super) async fn list_webhooks(
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

pub(super) fn apply_webhook(hook: &mut Webhook, body: &Value) {
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

pub(super) async fn create_webhook(
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

pub(super) fn find_webhook<'a>(
    app: &'a mut App,
    integration_id: &str,
    webhook_id: &str,
) -> ApiResult<&'a mut Webhook> {
    app.webhooks
        .get_mut(integration_id)
        .and_then(|hooks| hooks.iter_mut().find(|h| h.id == webhook_id))
        .ok_or_else(|| ApiError::not_found("webhook_not_found", "Webhook not found"))
}

pub(super) async fn get_webhook(
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

pub(super) async fn update_webhook(
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

pub(super) async fn delete_webhook(
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
