//! What the server can see of delivery: whether reports can reach it at all, and what the
//! webhook check found upstream.

use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

use crate::sunco::ids::format_timestamp;

/// Whether delivery reports can reach the server at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TrackingStatus {
    /// No webhook secret is configured: the webhook route refuses every POST, so no report can
    /// arrive. An empty answer means nothing.
    Off,
    /// Webhooks are configured but no event has arrived since the server started.
    Waiting,
    /// Events arrive (`lastEventAt` says when the last one did).
    On,
}

/// What the server found when it looked for its webhook upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum WebhookCheckStatus {
    /// Not checked yet.
    Unchecked,
    /// A custom integration's webhook subscribes to every trigger the server reads.
    Configured,
    /// No webhook subscribes to all of them: `missingTriggers` lists what is missing.
    Missing,
    /// The key cannot list webhooks (an integration key, say), or the check failed.
    Unknown,
}

/// The result of the webhook check (`ListIntegrations` + `ListWebhooks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCheck {
    pub status: WebhookCheckStatus,
    /// When status is missing: the triggers the best-matching webhook lacks (all of them when
    /// there is no webhook).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) missing_triggers: Vec<String>,
    /// When the check ran (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) checked_at: Option<String>,
    /// Why the status is unknown, or which integration carries the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

impl WebhookCheck {
    pub(crate) fn unchecked() -> Self {
        Self {
            status: WebhookCheckStatus::Unchecked,
            missing_triggers: vec![],
            checked_at: None,
            detail: None,
        }
    }
}

/// What the delivery answers can be trusted for: carried by the delivery tools and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tracking {
    pub status: TrackingStatus,
    /// When the last webhook event arrived (ISO 8601), once one has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_event_at: Option<String>,
    pub webhook: WebhookCheck,
    /// What this means for reading the answer.
    pub message: String,
}

/// What the server can see of delivery, shared by the tracker (which notes each event), the
/// webhook check, the delivery tools and `/readyz`. It outlives tracker restarts.
#[derive(Debug)]
pub struct Watch {
    webhooks_enabled: bool,
    check: Mutex<WebhookCheck>,
    /// When this replica last stored a webhook POST (Unix ms; 0: never), for when the shared
    /// record cannot say.
    seen_here: std::sync::atomic::AtomicI64,
}

impl Watch {
    /// `webhooks_enabled`: whether the webhook route can accept events (a secret is set).
    pub(crate) fn new(webhooks_enabled: bool) -> Self {
        Self {
            webhooks_enabled,
            check: Mutex::new(WebhookCheck::unchecked()),
            seen_here: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// This replica stored a webhook POST now.
    pub(crate) fn saw_event(&self) {
        let now = crate::sunco::ids::now_unix_ms();
        self.seen_here
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// When this replica last stored a webhook POST.
    pub(crate) fn last_seen_here(&self) -> Option<OffsetDateTime> {
        match self.seen_here.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            ms => OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok(),
        }
    }

    /// Records the outcome of a webhook check.
    pub(crate) fn set_check(&self, check: WebhookCheck) {
        if let Ok(mut c) = self.check.lock() {
            *c = check;
        }
    }

    /// The tracking status, given when the last event arrived (from the delivery record, so
    /// that every replica agrees).
    pub(crate) fn tracking(&self, last: Option<OffsetDateTime>) -> Tracking {
        let webhook = self
            .check
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|_| WebhookCheck::unchecked());
        let missing = webhook.status == WebhookCheckStatus::Missing;
        let (status, message) = match (self.webhooks_enabled, last) {
            (false, _) => (
                TrackingStatus::Off,
                "Delivery tracking is off: the server has no webhook secret (SUNCO_WEBHOOK_SECRET), so no delivery report can reach it. An empty answer here means nothing: confirm with list_messages or the user, and do not treat silence as delivered or as failed.".to_owned(),
            ),
            (true, None) => (
                TrackingStatus::Waiting,
                if missing {
                    "No webhook event has arrived, and the upstream webhook lacks the triggers in webhook.missingTriggers: reports for them will not come. Do not treat silence as delivered.".to_owned()
                } else {
                    "No webhook event has arrived since the server started: an empty answer may mean no report yet, or that reports are not arriving.".to_owned()
                },
            ),
            (true, Some(at)) if missing => (
                TrackingStatus::On,
                format!(
                    "Webhook events arrive (the last at {}), but the upstream webhook lacks the triggers in webhook.missingTriggers: reports of those kinds will not come, so silence about them proves nothing.",
                    format_timestamp(at)
                ),
            ),
            (true, Some(at)) => (
                TrackingStatus::On,
                format!(
                    "Webhook events arrive (the last at {}): a message without events has had no report yet; wait rather than resend.",
                    format_timestamp(at)
                ),
            ),
        };
        Tracking {
            status,
            last_event_at: last.map(format_timestamp),
            webhook,
            message,
        }
    }
}
