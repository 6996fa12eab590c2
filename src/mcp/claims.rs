//! The fleet's work loop: `claim_conversation` and `release_conversation`.

use std::time::Duration;

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::args::Parameters;
use super::entry::ToolError;
use super::{ZendeskMcp, opt_id_arg, record_id};
use crate::call::{Call, Mode};
use crate::error::CallError;
use crate::operations::claims::{ClaimRequest, ClaimResult};
use crate::shared::{Release, Token};
use crate::sunco::ids::{format_timestamp, from_unix_ms};

#[tool_router(router = claim_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "Take the next conversation that waits for a reply, so that one agent answers each customer. Hands out the longest-waiting conversation your switchboard integration controls, once its customer has been quiet quietSeconds, with the unanswered messages; nobody else gets it until the lease ends. waitSeconds waits for work. Answer with send_message {claim}; renew with {claim}; end with release_conversation.",
        annotations(
            title = "Claim a conversation",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn claim_conversation(
        &self,
        call: Call,
        Parameters(a): Parameters<ClaimArgs>,
    ) -> Result<Json<ClaimView>, ToolError> {
        let settings = self.live.get();
        let req = a.request(settings.claim_quiet, settings.claim_lease)?;
        let progress = call.progress().cloned();
        let on_wait = move |waited: Duration| {
            let progress = progress.clone();
            async move {
                if let Some(p) = progress {
                    let told = format!("waiting for work: {} s", waited.as_secs());
                    p.tell(waited.as_secs_f64(), None, told).await;
                }
            }
        };
        let result = self.ops.claim(&call, req, on_wait).await?;
        Ok(Json(ClaimView::of(result, call.mode())))
    }

    #[tool(
        description = "Show the customer you are at work: typing:start, typing:stop (a sent message stops typing too) or conversation:read. Subject to the send guard.",
        annotations(
            title = "Send an activity",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn send_activity(
        &self,
        call: Call,
        Parameters(a): Parameters<ActivityArgs>,
    ) -> Result<Json<ActivitySent>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        let kind = a.kind.as_str();
        self.ops
            .send_activity(&call, &conversation_id, kind)
            .await?;
        Ok(Json(ActivitySent {
            conversation_id,
            kind,
        }))
    }

    #[tool(
        description = "End your claim on a conversation: outcome answered (done), skipped (back in the queue now, behind the others) or handed_over. A send with keepClaim false ends it as answered already.",
        annotations(
            title = "Release a conversation",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn release_conversation(
        &self,
        call: Call,
        Parameters(a): Parameters<ReleaseArgs>,
    ) -> Result<Json<Released>, ToolError> {
        let how = match a.outcome {
            Outcome::Answered => Release::Answered { keep: false },
            Outcome::Skipped => Release::Skipped,
            Outcome::HandedOver => Release::HandedOver,
        };
        let conversation_id = self.ops.release_claim(&call, &a.claim, how).await?;
        Ok(Json(Released {
            conversation_id,
            outcome: how.as_str(),
            dry_run: (call.mode() == Mode::DryRun).then_some(true),
        }))
    }
}

/// Whole seconds from `min` to `max`, or `default`.
fn seconds(
    field: &str,
    given: Option<u32>,
    min: u32,
    max: u32,
    default: Duration,
) -> Result<Duration, CallError> {
    match given {
        None => Ok(default),
        Some(s) if (min..=max).contains(&s) => Ok(Duration::from_secs(u64::from(s))),
        Some(_) => Err(CallError::invalid(
            field,
            format!("must be from {min} to {max} seconds"),
        )),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ClaimArgs {
    /// This conversation only (handed out at once when free); else the longest-waiting one.
    #[serde(default)]
    pub(crate) conversation_id: Option<String>,
    /// Renew this claim (its token): the lease starts again and the answer shows what arrived.
    #[serde(default)]
    pub(crate) claim: Option<String>,
    /// Only conversations whose customer writes through this channel type (whatsapp, web, …).
    #[serde(default)]
    pub(crate) channel: Option<String>,
    /// Only conversations this switchboard integration controls (id, name or type).
    #[serde(default)]
    pub(crate) active_switchboard_integration: Option<String>,
    /// Wait up to this long for work (0-50, default 0).
    #[serde(default)]
    #[schemars(range(min = 0, max = 50))]
    pub(crate) wait_seconds: Option<u32>,
    /// How long the customer must have been quiet (0-30; the server's default, 2 unless set).
    #[serde(default)]
    #[schemars(range(min = 0, max = 30))]
    pub(crate) quiet_seconds: Option<u32>,
    /// The lease (5-600; the server's default, 60 unless set): renew before it ends.
    #[serde(default)]
    #[schemars(range(min = 5, max = 600))]
    pub(crate) lease_seconds: Option<u32>,
    /// Show the customer the typing indicator once claimed.
    #[serde(default)]
    pub(crate) typing: Option<bool>,
    /// Mark the customer's messages read once claimed.
    #[serde(default)]
    pub(crate) mark_read: Option<bool>,
}

impl ClaimArgs {
    /// The request, with `quiet` and `lease` when the call does not say.
    fn request(self, quiet: Duration, lease: Duration) -> Result<ClaimRequest, CallError> {
        let conversation_id = self
            .conversation_id
            .as_deref()
            .map(|c| record_id("conversationId", c))
            .transpose()?;
        if self.claim.is_some() && conversation_id.is_some() {
            return Err(CallError::invalid(
                "claim",
                "renews the claim it names: leave conversationId out (the claim names it)",
            ));
        }
        Ok(ClaimRequest {
            conversation_id,
            renew: self.claim,
            channel: opt_id_arg("channel", &self.channel)?,
            active: opt_id_arg(
                "activeSwitchboardIntegration",
                &self.active_switchboard_integration,
            )?,
            wait: seconds("waitSeconds", self.wait_seconds, 0, 50, Duration::ZERO)?,
            quiet: seconds("quietSeconds", self.quiet_seconds, 0, 30, quiet)?,
            lease: seconds("leaseSeconds", self.lease_seconds, 5, 600, lease)?,
            activities: [
                (self.mark_read == Some(true)).then_some("conversation:read"),
                (self.typing == Some(true)).then_some("typing:start"),
            ]
            .into_iter()
            .flatten()
            .collect(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ReleaseArgs {
    /// The claim's token.
    pub(crate) claim: String,
    pub(crate) outcome: Outcome,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ActivityArgs {
    pub(crate) conversation_id: String,
    #[serde(rename = "type")]
    pub(crate) kind: Activity,
}

/// An activity the business posts.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub(crate) enum Activity {
    #[serde(rename = "typing:start")]
    TypingStart,
    #[serde(rename = "typing:stop")]
    TypingStop,
    #[serde(rename = "conversation:read")]
    ConversationRead,
}

impl Activity {
    fn as_str(self) -> &'static str {
        match self {
            Activity::TypingStart => "typing:start",
            Activity::TypingStop => "typing:stop",
            Activity::ConversationRead => "conversation:read",
        }
    }
}

/// What `send_activity` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActivitySent {
    pub(crate) conversation_id: String,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
}

/// How the claim ends.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    Answered,
    Skipped,
    HandedOver,
}

/// A claim handed out.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClaimOut {
    /// Pass it as `claim` to send_message, claim_conversation (renew) and release_conversation.
    pub(crate) token: String,
    pub(crate) conversation_id: String,
    /// When the lease ends unless renewed (RFC 3339).
    pub(crate) expires_at: String,
}

/// The conversation a claim is on.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClaimedConversation {
    pub(crate) id: String,
    /// The id of the switchboard integration in control, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) active_switchboard_integration: Option<String>,
    /// The channel type the customer last wrote through, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) channel: Option<String>,
}

/// What `claim_conversation` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClaimView {
    /// The claim, or null when none was handed out (see `reason`).
    pub(crate) claim: Option<ClaimOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) conversation: Option<ClaimedConversation>,
    /// The user messages since the last answer, oldest first (the newest 20).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) unanswered: Vec<Value>,
    /// Unanswered messages older than those shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unanswered_omitted: Option<usize>,
    /// On a renewal: how many of them arrived since you were last shown them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) new_messages: Option<usize>,
    /// Since when the customer waits (the first unanswered message reached the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) waiting_since: Option<String>,
    /// Without a claim: `nothing_ready`, `held` (another caller's until heldUntil),
    /// `not_waiting` (nothing to answer there) or `shutting_down` (call again: another
    /// replica answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) held_until: Option<String>,
    /// Without a claim: when something known will be ready (1 when nothing is known); pass
    /// waitSeconds to wait here instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retry_after_seconds: Option<u64>,
    /// typing/markRead: each activity and `sent`, `dry_run` or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) activities: Option<std::collections::BTreeMap<String, String>>,
    /// A dry run: the claim is real (claims change nothing upstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dry_run: Option<bool>,
}

fn time(ms: i64) -> Option<String> {
    from_unix_ms(ms).map(format_timestamp)
}

impl ClaimView {
    fn of(result: ClaimResult, mode: Mode) -> Self {
        let dry_run = (mode == Mode::DryRun).then_some(true);
        match result {
            ClaimResult::Claimed {
                claimed,
                messages,
                omitted,
                new,
                activities,
            } => Self {
                claim: Some(ClaimOut {
                    token: Token::of(&claimed).to_string(),
                    conversation_id: claimed.conversation_id.clone(),
                    expires_at: time(claimed.expires).unwrap_or_default(),
                }),
                conversation: Some(ClaimedConversation {
                    id: claimed.conversation_id.clone(),
                    active_switchboard_integration: claimed.active.clone(),
                    channel: claimed.channel.clone(),
                }),
                unanswered: messages,
                unanswered_omitted: (omitted > 0).then_some(omitted),
                new_messages: (claimed.shown_before > 0).then_some(new),
                waiting_since: claimed.pending.first().and_then(|p| time(p.learnt)),
                reason: None,
                held_until: None,
                retry_after_seconds: None,
                activities: (!activities.is_empty()).then(|| activities.into_iter().collect()),
                dry_run,
            },
            ClaimResult::None {
                why,
                retry_after,
                held_until,
            } => Self {
                claim: None,
                conversation: None,
                unanswered: vec![],
                unanswered_omitted: None,
                new_messages: None,
                waiting_since: None,
                reason: Some(why.as_str()),
                held_until: held_until.and_then(time),
                retry_after_seconds: Some(retry_after.as_millis().div_ceil(1000) as u64),
                activities: None,
                dry_run,
            },
        }
    }
}

/// What `release_conversation` answers.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Released {
    pub(crate) conversation_id: String,
    pub(crate) outcome: &'static str,
    /// A dry run: the claim was checked and kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dry_run: Option<bool>,
}
