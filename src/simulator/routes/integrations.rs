//! Integrations.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Q, app, link_base, ok, page_from, paginate};
use crate::simulator::Sim;
use crate::simulator::auth::{APP_OR_ACCOUNT, authorize};
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::state::App;
use crate::sunco::paging::PAGE_SIZE_DEFAULT;
use crate::sunco::wire::Integration;

pub(crate) const INTEGRATION_TYPES: &[&str] = &[
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
pub(super) fn render_integration(app: &App, i: &Integration) -> Value {
    let mut v = json!(i);
    if i.kind == "custom" {
        v["webhooks"] = json!(app.webhooks.get(&i.id).cloned().unwrap_or_default());
    }
    v
}

pub(super) async fn list_integrations(
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

pub(super) async fn get_integration(
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
