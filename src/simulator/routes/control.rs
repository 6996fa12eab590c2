//! Switchboard actions.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde_json::json;

use super::{app, app_mut, body_json, conversation, emit, empty};
use crate::simulator::auth::{ALL_SCOPES, Caller, authorize};
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::state::App;
use crate::simulator::{Sim, validate};
use crate::sunco::auth::Scope;
use crate::sunco::wire::{ConversationTruncated, SwitchboardIntegration, event_type};

#[derive(Clone, Copy)]
pub(super) enum ControlAction {
    Pass,
    Offer,
    Accept,
    Release,
}

/// The handler of one switchboard action's route.
pub(super) fn control_route(action: ControlAction) -> axum::routing::MethodRouter<Arc<Sim>> {
    post(
        move |State(sim): State<Arc<Sim>>,
              headers: HeaderMap,
              Path(ids): Path<(String, String)>,
              body: Bytes| { control(action, sim, headers, ids, body) },
    )
}

/// Resolves a control target: by id, then name, then integrationType, or `next`.
pub(super) fn resolve_target(
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

pub(super) async fn control(
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
    let mut conv = rec.conversation.clone();
    let kind = transition(app_ref, &mut conv, action, target.as_deref(), &caller)?;
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

/// Applies one switchboard action to `conv` for `caller` (the route's caller, or the author of a
/// message holding an in-band command); the webhook event it emits.
pub(super) fn transition(
    app: &App,
    conv: &mut crate::sunco::wire::Conversation,
    action: ControlAction,
    target: Option<&str>,
    caller: &Caller,
) -> ApiResult<&'static str> {
    let switchboard = app
        .switchboard
        .as_ref()
        .ok_or_else(ApiError::switchboard_not_found)?;
    if !switchboard.enabled {
        return Err(ApiError::bad_request(
            "The switchboard is disabled: enable it before changing control",
        ));
    }
    let active_id = conv
        .active_switchboard_integration
        .as_ref()
        .map(|a| a.id.clone());
    let is_caller = |sbi: Option<&crate::sunco::wire::SwitchboardIntegrationRef>| {
        sbi.is_some_and(|s| Some(&s.integration_id) == caller.integration_id.as_ref())
    };
    Ok(match action {
        ControlAction::Pass => {
            let t = resolve_target(app, active_id.as_deref(), target.unwrap_or_default())?;
            conv.active_switchboard_integration = Some(t.as_ref_on_conversation());
            conv.pending_switchboard_integration = None;
            event_type::PASS_CONTROL
        }
        ControlAction::Offer => {
            let t = resolve_target(app, active_id.as_deref(), target.unwrap_or_default())?;
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
    })
}
