//! The channel tools: integrations without their secrets.

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};

use super::args::Parameters;
use super::entry::ToolError;
use super::{ZendeskMcp, cursor, forward_cursor, integration_view, page_size, record_id};
use crate::call::Call;
use crate::error::CallError;
use crate::mcp::{IntegrationArgs, IntegrationOut, IntegrationPage, ListIntegrationsArgs};
use crate::sunco::endpoints::Endpoint;
use crate::sunco::paging::Page;
use crate::sunco::wire::{IntegrationListResponse, IntegrationResponse};

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
        for (i, t) in a.types.iter().enumerate() {
            if t.is_empty()
                || t.len() > 64
                || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == ':')
            {
                return Err(CallError::invalid(
                    format!("types[{i}]"),
                    "must be an integration type such as whatsapp or messenger",
                )
                .into());
            }
        }
        let mut page = match &a.cursor {
            Some(c) => Page::after(cursor::decode("list_integrations", c)?),
            None => Page::default(),
        };
        page.size = page_size("limit", a.limit, 100)?;
        let answer: IntegrationListResponse = self
            .ops
            .request(
                &call,
                &Endpoint::ListIntegrations {
                    types: a.types,
                    page,
                },
            )
            .await?;
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
