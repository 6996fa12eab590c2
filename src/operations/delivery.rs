//! What the webhooks said about messages, together with what the server can see.

use crate::actors::delivery::{
    DeliveryEvent, DeliveryFailure, DeliveryKind, Tracking, TrackingStatus,
};
use crate::error::CallError;
use crate::sunco::remediation::next_step;

use super::Operations;

/// A message's delivery as the webhooks reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum DeliveryState {
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
    /// This server has no record of the message: it did not send or read it lately and no
    /// webhook named it (a mistyped id, one sent by another system, or one whose record aged
    /// out). Waiting will not change that: check the id with `get_message`.
    NotSeen,
}

/// One message's delivery, as `get_delivery_status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeliveryStatus {
    pub(crate) conversation_id: Option<String>,
    pub(crate) state: DeliveryState,
    /// The last failure event, when the state is failed.
    pub(crate) failure: Option<DeliveryEvent>,
    /// What to do about the failure.
    pub(crate) next_step: Option<crate::sunco::remediation::NextStep>,
    pub(crate) events: Vec<DeliveryEvent>,
    pub(crate) tracking: Tracking,
}

impl Operations {
    /// The delivery events of `message_id`, the state they amount to (a failure wins, then a
    /// delivery to the user, then a hand-over to the channel), and the tracking status.
    pub(crate) async fn delivery_status(
        &self,
        message_id: &str,
    ) -> Result<DeliveryStatus, CallError> {
        let tracker = &self.actors.tracker;
        let record = tracker.status(message_id).await?;
        let tracking = tracker.tracking().await;
        let (conversation_id, events, seen) = match record {
            Some(r) => (r.conversation_id, r.events, true),
            // No report yet: known only if this server sent it (or read it) lately.
            None => match tracker.seen(message_id).await? {
                Some(s) => (Some(s.conversation_id), vec![], true),
                None => (None, vec![], false),
            },
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
        } else if !seen {
            DeliveryState::NotSeen
        } else {
            DeliveryState::NoEventsYet
        };
        let next = failure.as_ref().and_then(|f| {
            let e = f.error.as_ref()?;
            Some(next_step(&f.channel, &e.code, &e.message))
        });
        Ok(DeliveryStatus {
            conversation_id,
            state,
            next_step: next,
            failure,
            events,
            tracking,
        })
    }

    /// Recent failures, newest first, of one conversation or app-wide, that pass `query`, each
    /// with its next step; whether more passed than `limit`; and the tracking status.
    pub(crate) async fn delivery_failures(
        &self,
        conversation_id: Option<&str>,
        limit: usize,
        query: &FailureQuery,
    ) -> Result<(Vec<DeliveryFailure>, bool, Tracking), CallError> {
        let tracker = &self.actors.tracker;
        let want = if query.is_empty() {
            limit + 1
        } else {
            usize::MAX
        };
        let mut failures = tracker.failures(conversation_id, want).await?;
        failures.retain(|f| query.admits(f));
        let has_more = failures.len() > limit;
        failures.truncate(limit);
        for f in &mut failures {
            f.next_step = Some(next_step(&f.channel, &f.code, &f.reason));
        }
        Ok((failures, has_more, tracker.tracking().await))
    }
}

/// Filters on delivery failures. Times are Unix milliseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct FailureQuery {
    /// The channel type, e.g. `whatsapp` (case-insensitive).
    pub(crate) channel: Option<String>,
    /// The error code, exactly.
    pub(crate) code: Option<String>,
    pub(crate) created_after: Option<i64>,
    pub(crate) created_before: Option<i64>,
}

impl FailureQuery {
    fn is_empty(&self) -> bool {
        self.channel.is_none()
            && self.code.is_none()
            && self.created_after.is_none()
            && self.created_before.is_none()
    }

    fn admits(&self, f: &DeliveryFailure) -> bool {
        let at = crate::sunco::ids::parse_timestamp(&f.created_at).map(crate::sunco::ids::unix_ms);
        self.channel
            .as_ref()
            .is_none_or(|c| c.eq_ignore_ascii_case(&f.channel))
            && self.code.as_ref().is_none_or(|c| *c == f.code)
            && self
                .created_after
                .is_none_or(|a| at.is_some_and(|at| at > a))
            && self
                .created_before
                .is_none_or(|b| at.is_some_and(|at| at < b))
    }
}
