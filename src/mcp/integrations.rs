//! The channel tools: integrations without their secrets.

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::Parameters;
use super::entry::ToolError;
use super::{ZendeskMcp, cursor, forward_cursor, page_size, record_id};
use crate::call::Call;
use crate::error::CallError;
use crate::sunco::endpoints::Endpoint;
use crate::sunco::paging::Page;
use crate::sunco::wire::{Integration, IntegrationListResponse, IntegrationResponse, Webhook};

#[tool_router(router = integration_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "List the app's channel integrations (web, ios, android, messenger, whatsapp, custom, ...), optionally only some types. Channel secrets are never shown. Pages: pass nextCursor back as cursor while hasMore is true.",
        annotations(
            title = "List integrations",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn list_integrations(
        &self,
        call: Call,
        Parameters(a): Parameters<ListIntegrationsArgs>,
    ) -> Result<Json<IntegrationPage>, ToolError> {
        check_types(&a.types)?;
        let mut page = match &a.cursor {
            Some(c) => Page::after(cursor::decode("list_integrations", c)?),
            None => Page::default(),
        };
        page.size = page_size("limit", a.limit, 100)?;
        let endpoint = Endpoint::ListIntegrations {
            types: a.types,
            page,
        };
        let answer: IntegrationListResponse = self.ops.request(&call, &endpoint).await?;
        let last = answer.integrations.last().map(|i| i.id.as_str());
        let next_cursor = forward_cursor("list_integrations", &answer.meta, last);
        Ok(Json(IntegrationPage {
            has_more: next_cursor.is_some(),
            integrations: answer
                .integrations
                .into_iter()
                .map(integration_view)
                .collect(),
            next_cursor,
        }))
    }

    #[tool(
        description = "Get one channel integration by id: type, status, display name (and, for custom integrations, where their webhooks point). Channel secrets are never shown.",
        annotations(
            title = "Get an integration",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_integration(
        &self,
        call: Call,
        Parameters(a): Parameters<IntegrationArgs>,
    ) -> Result<Json<IntegrationOut>, ToolError> {
        let integration_id = record_id("integrationId", &a.integration_id)?;
        let answer: IntegrationResponse = self
            .ops
            .request(&call, &Endpoint::GetIntegration { integration_id })
            .await?;
        Ok(Json(IntegrationOut {
            integration: integration_view(answer.integration),
        }))
    }
}

// The arguments and results of these tools: the `///` docs become the schemas an LLM reads.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListIntegrationsArgs {
    /// Only these channel types, e.g. `["whatsapp", "messenger"]`.
    #[serde(default)]
    pub(crate) types: Vec<String>,
    /// Integrations per page, 1 to 100 (default 25).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub(crate) limit: Option<u32>,
    /// The nextCursor of the previous page; omit for the first page.
    #[serde(default)]
    pub(crate) cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct IntegrationArgs {
    /// The integration's id.
    pub(crate) integration_id: String,
}

/// A channel integration, without any of its secrets.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IntegrationView {
    pub(crate) id: String,
    /// The channel type: web, ios, android, messenger, whatsapp, custom, ...
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// active, inactive or error.
    pub(crate) status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) display_name: Option<String>,
    /// For custom integrations: where their webhooks point (secrets omitted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) webhooks: Vec<WebhookView>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookView {
    pub(crate) id: String,
    pub(crate) target: String,
    pub(crate) triggers: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IntegrationPage {
    pub(crate) integrations: Vec<IntegrationView>,
    pub(crate) has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IntegrationOut {
    pub(crate) integration: IntegrationView,
}

/// Checks the integration types a list is filtered by.
fn check_types(types: &[String]) -> Result<(), CallError> {
    for (i, t) in types.iter().enumerate() {
        if t.is_empty() || t.len() > 64 || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == ':')
        {
            return Err(CallError::invalid(
                format!("types[{i}]"),
                "must be an integration type such as whatsapp or messenger",
            ));
        }
    }
    Ok(())
}

/// An integration without its secrets: only fields known to be safe are copied.
pub(super) fn integration_view(i: Integration) -> IntegrationView {
    let webhooks = i
        .extra
        .get("webhooks")
        .and_then(|w| serde_json::from_value::<Vec<Webhook>>(w.clone()).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|w| WebhookView {
            id: w.id,
            target: w.target,
            triggers: w.triggers,
        })
        .collect();
    IntegrationView {
        id: i.id,
        kind: i.kind,
        status: i.status,
        display_name: i.display_name,
        webhooks,
    }
}
