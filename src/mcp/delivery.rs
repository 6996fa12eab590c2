//! The delivery tools: what the webhooks reported, and what the server can see.

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};

use super::args::Parameters;
use super::entry::ToolError;
use super::{ZendeskMcp, opt_id_arg, record_id};
use crate::error::CallError;
use crate::mcp::{DeliveryFailures, DeliveryFailuresArgs, DeliveryStatusArgs, DeliveryStatusOut};
use crate::operations::conversations::ConversationQuery;

#[tool_router(router = delivery_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "What the webhooks said about one message: sent to the channel, delivered to the user, or failed (with the channel's error code, reason and nextStep: what to do). Answers from what the server has received; it never polls the API. noEventsYet means no report has arrived: wait, do not resend. Read tracking first: when its status is off, no report can arrive (state untracked).",
        annotations(
            title = "Get delivery status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_delivery_status(
        &self,
        Parameters(a): Parameters<DeliveryStatusArgs>,
    ) -> Result<Json<DeliveryStatusOut>, ToolError> {
        let message_id = record_id("messageId", &a.message_id)?;
        let status = self.ops.delivery_status(&message_id).await?;
        Ok(Json(DeliveryStatusOut {
            message_id,
            conversation_id: status.conversation_id,
            state: status.state,
            failure: status.failure,
            next_step: status.next_step,
            events: status.events,
            tracking: status.tracking,
        }))
    }

    #[tool(
        description = "Recent delivery failures reported by webhook, newest first: message, conversation, channel, error code, reason and nextStep (what to do: e.g. send a template, do not retry). For one conversation or app-wide; filter by channel, code and time. Answers from what the server has received; it never polls the API. An empty list means none only when tracking.status is on.",
        annotations(
            title = "List delivery failures",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_delivery_failures(
        &self,
        Parameters(a): Parameters<DeliveryFailuresArgs>,
    ) -> Result<Json<DeliveryFailures>, ToolError> {
        let conversation_id = a
            .conversation_id
            .as_deref()
            .map(|c| record_id("conversationId", c))
            .transpose()?;
        let limit = match a.limit {
            None => 50,
            Some(n @ 1..=200) => n as usize,
            Some(_) => return Err(CallError::invalid("limit", "must be from 1 to 200").into()),
        };
        let query = crate::operations::delivery::FailureQuery {
            channel: opt_id_arg("channel", &a.channel)?,
            code: opt_id_arg("code", &a.code)?,
            created_after: ConversationQuery::time("createdAfter", a.created_after.as_deref())?,
            created_before: ConversationQuery::time("createdBefore", a.created_before.as_deref())?,
        };
        let (failures, has_more, tracking) = self
            .ops
            .delivery_failures(conversation_id.as_deref(), limit, &query)
            .await?;
        Ok(Json(DeliveryFailures {
            failures,
            has_more,
            tracking,
        }))
    }
}
