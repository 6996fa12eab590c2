//! The delivery tools: what the webhooks reported, and what the server can see.

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::Parameters;
use super::entry::ToolError;
use super::{ZendeskMcp, opt_id_arg, record_id};
use crate::actors::delivery::{DeliveryEvent, DeliveryFailure, Tracking};
use crate::error::CallError;
use crate::operations::conversations::ConversationQuery;
use crate::operations::delivery::DeliveryState;

#[tool_router(router = delivery_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "What the webhooks said about one message: sent to the channel, delivered to the user, or failed (with the channel's error code, reason and nextStep: what to do). Answers from what the server has received; it never polls the API. noEventsYet means no report has arrived: wait, do not resend. notSeen means this server has no record of the message (it did not send or read it lately, and no webhook named it): waiting will not help; check the id with get_message. Read tracking first: when its status is off, no report can arrive (state untracked).",
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

// The arguments and results of these tools: the `///` docs become the schemas an LLM reads.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DeliveryStatusArgs {
    /// The message's id, as send_message returned it.
    pub(crate) message_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DeliveryFailuresArgs {
    /// Only failures in this conversation; all of the app's when omitted.
    #[serde(default)]
    pub(crate) conversation_id: Option<String>,
    /// Failures to return, newest first, 1 to 200 (default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 200))]
    pub(crate) limit: Option<u32>,
    /// Only failures on this channel type, e.g. `whatsapp`.
    #[serde(default)]
    pub(crate) channel: Option<String>,
    /// Only failures with this error code, e.g. `uncategorized_error`.
    #[serde(default)]
    pub(crate) code: Option<String>,
    /// Only failures reported after this time (ISO 8601).
    #[serde(default)]
    pub(crate) created_after: Option<String>,
    /// Only failures reported before this time (ISO 8601).
    #[serde(default)]
    pub(crate) created_before: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryStatusOut {
    pub(crate) message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) conversation_id: Option<String>,
    pub(crate) state: DeliveryState,
    /// Present when state is failed: the channel's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<DeliveryEvent>,
    /// Present when state is failed: what to do next (action, retryable, advice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_step: Option<crate::sunco::remediation::NextStep>,
    /// Every delivery event received for the message, in arrival order.
    pub(crate) events: Vec<DeliveryEvent>,
    /// Whether reports can reach the server at all: read it before trusting an empty answer.
    pub(crate) tracking: Tracking,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryFailures {
    /// Newest first.
    pub(crate) failures: Vec<DeliveryFailure>,
    /// True when more failures pass the filters than `limit`: raise it, or narrow the filters.
    pub(crate) has_more: bool,
    /// Whether reports can reach the server at all: an empty list means "none" only when
    /// tracking.status is on.
    pub(crate) tracking: Tracking,
}
