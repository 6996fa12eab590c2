//! The delivery tools: what the webhooks reported, and what the server can see.

use super::*;

#[tool_router(router = delivery_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "What the webhooks said about one message: sent to the channel, delivered to the user, or failed (with the channel's error code and reason). Answers from what the server has received; it never polls the API. noEventsYet means no report has arrived: wait, do not resend. Read tracking first: when its status is off, no report can arrive (state untracked).",
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
        let record = self.ops.actors.tracker.status(&message_id).await?;
        let (conversation_id, events) = match record {
            Some(r) => (Some(r.conversation_id), r.events),
            None => (None, vec![]),
        };
        let tracking = self.ops.actors.tracker.tracking();
        let has = |kind| events.iter().any(|e| e.kind == kind);
        let failure = events
            .iter()
            .rev()
            .find(|e| e.kind == DeliveryKind::Failure)
            .cloned();
        let state = if failure.is_some() {
            DeliveryState::Failed
        } else if has(DeliveryKind::User) {
            DeliveryState::DeliveredToUser
        } else if has(DeliveryKind::Channel) {
            DeliveryState::SentToChannel
        } else if tracking.status == TrackingStatus::Off {
            DeliveryState::Untracked
        } else {
            DeliveryState::NoEventsYet
        };
        Ok(Json(DeliveryStatusOut {
            message_id,
            conversation_id: conversation_id.flatten(),
            state,
            failure,
            events,
            tracking,
        }))
    }

    #[tool(
        description = "Recent delivery failures reported by webhook, newest first: message, conversation, channel, error code and reason. For one conversation or app-wide. Answers from what the server has received; it never polls the API. An empty list means none only when tracking.status is on.",
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
        let failures = self
            .ops
            .actors
            .tracker
            .failures(conversation_id.as_deref(), limit)
            .await?;
        Ok(Json(DeliveryFailures {
            failures,
            tracking: self.ops.actors.tracker.tracking(),
        }))
    }
}
