//! Switchboards.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{app, app_mut, body_json, created, empty, ok};
use crate::simulator::auth::{APP_OR_ACCOUNT, authorize};
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::state::App;
use crate::simulator::{Sim, validate};
use crate::sunco::wire::{Switchboard, SwitchboardIntegration};

pub(super) async fn list_switchboards(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> ApiResult<Response> {
    let world = sim.world();
    authorize(&world, &headers, &app_id, APP_OR_ACCOUNT)?;
    let list: Vec<&Switchboard> = app(&world, &app_id)?.switchboard.iter().collect();
    Ok(ok(json!({ "switchboards": list })))
}

pub(super) async fn create_switchboard(
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

pub(super) fn switchboard_mut<'a>(app: &'a mut App, id: &str) -> ApiResult<&'a mut Switchboard> {
    app.switchboard
        .as_mut()
        .filter(|s| s.id == id)
        .ok_or_else(ApiError::switchboard_not_found)
}

pub(super) async fn update_switchboard(
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

pub(super) async fn delete_switchboard(
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

pub(super) async fn list_switchboard_integrations(
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
pub(super) fn apply_sbi(
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

pub(super) async fn create_switchboard_integration(
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

pub(super) async fn update_switchboard_integration(
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
pub(super) fn replace_on_conversations(
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

pub(super) async fn delete_switchboard_integration(
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
