//! What the webhooks said about messages, together with what the server can see.

use crate::actors::delivery::{
    DeliveryEvent, DeliveryFailure, DeliveryKind, Tracking, TrackingStatus,
};
use crate::error::CallError;

use super::Operations;

/// A message's delivery as the webhooks reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryState {
    /// No webhook has reported on it yet, and reports arrive: wait, do not resend.
    NoEventsYet,
    /// Handed to the channel.
    SentToChannel,
    /// The user's device has it.
    DeliveredToUser,
    /// The channel refused it (see failure).
    Failed,
    /// No report can arrive (tracking is off): the server cannot tell.
    Untracked,
}

/// One message's delivery, as `get_delivery_status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryStatus {
    pub conversation_id: Option<String>,
    pub state: DeliveryState,
    /// The last failure event, when the state is failed.
    pub failure: Option<DeliveryEvent>,
    pub events: Vec<DeliveryEvent>,
    pub tracking: Tracking,
}

impl Operations {
    /// The delivery events of `message_id`, the state they amount to (a failure wins, then a
    /// delivery to the user, then a hand-over to the channel), and the tracking status.
    pub async fn delivery_status(&self, message_id: &str) -> Result<DeliveryStatus, CallError> {
        let tracker = &self.actors.tracker;
        let record = tracker.status(message_id).await?;
        let tracking = tracker.tracking().await;
        let (conversation_id, events) = match record {
            Some(r) => (r.conversation_id, r.events),
            None => (None, vec![]),
        };
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
        Ok(DeliveryStatus {
            conversation_id,
            state,
            failure,
            events,
            tracking,
        })
    }

    /// Recent failures, newest first, of one conversation or app-wide, with the tracking status.
    pub async fn delivery_failures(
        &self,
        conversation_id: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<DeliveryFailure>, Tracking), CallError> {
        let tracker = &self.actors.tracker;
        let failures = tracker.failures(conversation_id, limit).await?;
        Ok((failures, tracker.tracking().await))
    }
}
