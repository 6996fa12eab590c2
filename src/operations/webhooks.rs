//! Whether the upstream is set up to send the server the webhook events it reads.
//!
//! At start and every [`CHECK_INTERVAL`], the server lists the app's custom integrations
//! (`ListIntegrations`, `filter[types]=custom`) and their webhooks (`ListWebhooks`), picks the
//! webhook that sends this server's secret (or, when none shows one, the one that covers most of
//! [`event_type::READ_BY_SERVER`]) and records in the delivery [`Watch`](crate::actors::delivery::Watch)
//! whether it subscribes to every trigger the server reads. Keys that may not list integrations
//! (integration keys) get `unknown`, never a guess.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::actors::Actors;
use crate::actors::delivery::{WebhookCheck, WebhookCheckStatus};
use crate::call::Call;
use crate::error::CallError;
use crate::secret::Secret;
use crate::sunco::endpoints::Endpoint;
use crate::sunco::ids::now_timestamp;
use crate::sunco::paging::Page;
use crate::sunco::wire::{IntegrationListResponse, Webhook, WebhookListResponse, event_type};

/// How often the check runs again.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// How soon a check that failed on the way (the upstream unreachable, say) runs again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Pages of custom integrations read at most (an app has at most a few).
const MAX_PAGES: usize = 10;

/// The triggers of [`event_type::READ_BY_SERVER`] that `hook` lacks (`*` covers all).
fn lacking(hook: &Webhook) -> Vec<String> {
    if hook.triggers.iter().any(|t| t == "*") {
        return vec![];
    }
    event_type::READ_BY_SERVER
        .iter()
        .filter(|t| !hook.triggers.iter().any(|h| h == *t))
        .map(|t| (*t).to_owned())
        .collect()
}

/// The `unknown` result of a check that failed on the way.
fn failed_check(e: &CallError) -> WebhookCheck {
    WebhookCheck {
        status: WebhookCheckStatus::Unknown,
        missing_triggers: vec![],
        checked_at: Some(now_timestamp()),
        detail: Some(format!("the check failed: {e}")),
    }
}

/// Runs the check once. An error is a failure on the way (the upstream unreachable, say), not
/// an answer: a key that may not list webhooks gives `Ok` with status `unknown`.
pub(crate) async fn check_once(
    actors: &Actors,
    call: &Call,
    secret: Option<&Secret>,
) -> Result<WebhookCheck, CallError> {
    let checked_at = Some(now_timestamp());
    let hooks = match webhooks(actors, call).await {
        Ok(h) => h,
        Err(CallError::Upstream {
            status: 403,
            operation,
            ..
        }) => {
            return Ok(WebhookCheck {
                status: WebhookCheckStatus::Unknown,
                missing_triggers: vec![],
                checked_at,
                detail: Some(format!(
                    "the upstream refused {operation} (403) to this API key, so the server cannot see its webhook; check the webhook's triggers in the admin center"
                )),
            });
        }
        Err(e) => return Err(e),
    };
    let ours = secret.and_then(|s| {
        hooks
            .iter()
            .find(|(_, h)| h.secret.as_deref().is_some_and(|v| s.matches(v.as_bytes())))
    });
    let best = ours.or_else(|| hooks.iter().min_by_key(|(_, h)| lacking(h).len()));
    Ok(match best {
        None => WebhookCheck {
            status: WebhookCheckStatus::Missing,
            missing_triggers: event_type::READ_BY_SERVER
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            checked_at,
            detail: Some("the app has no custom integration with a webhook".into()),
        },
        Some((integration, hook)) => {
            let missing = lacking(hook);
            WebhookCheck {
                status: if missing.is_empty() {
                    WebhookCheckStatus::Configured
                } else {
                    WebhookCheckStatus::Missing
                },
                missing_triggers: missing,
                checked_at,
                detail: Some(format!(
                    "webhook {} of custom integration {integration}",
                    hook.id
                )),
            }
        }
    })
}

/// Every webhook of the app's custom integrations, with its integration's id.
async fn webhooks(actors: &Actors, call: &Call) -> Result<Vec<(String, Webhook)>, CallError> {
    let mut page = Page::default();
    let mut integrations = vec![];
    for _ in 0..MAX_PAGES {
        let answer: IntegrationListResponse = actors
            .dispatcher
            .call_json(
                call,
                &Endpoint::ListIntegrations {
                    types: vec!["custom".into()],
                    page: page.clone(),
                },
            )
            .await?;
        let last = answer.integrations.last().map(|i| i.id.clone());
        integrations.extend(answer.integrations.into_iter().map(|i| i.id));
        match (answer.meta.has_more, answer.meta.after_cursor.or(last)) {
            (true, Some(after)) => page = Page::after(after),
            _ => break,
        }
    }
    let mut hooks = vec![];
    for integration_id in integrations {
        let answer: WebhookListResponse = actors
            .dispatcher
            .call_json(
                call,
                &Endpoint::ListWebhooks {
                    integration_id: integration_id.clone(),
                },
            )
            .await?;
        hooks.extend(
            answer
                .webhooks
                .into_iter()
                .map(|h| (integration_id.clone(), h)),
        );
    }
    Ok(hooks)
}

/// Checks at start and every `interval` until `ct` is cancelled; logs what changed.
pub(crate) async fn run(
    actors: Arc<Actors>,
    secret: Option<Secret>,
    interval: Duration,
    ct: CancellationToken,
) {
    let mut last: Option<WebhookCheckStatus> = None;
    loop {
        // A round never runs into the next: its upstream requests end by the next round's time.
        let call =
            Call::internal_until(ct.clone()).with_deadline(tokio::time::Instant::now() + interval);
        let checked = check_once(&actors, &call, secret.as_ref()).await;
        // Stopped on the way (shutdown): nothing learnt, nothing to say.
        if ct.is_cancelled() {
            return;
        }
        let (check, failed) = match checked {
            Ok(check) => (check, false),
            // Failed on the way (not a refusal): reported as unknown, and tried again soon.
            Err(e) => (failed_check(&e), true),
        };
        if last != Some(check.status) {
            match check.status {
                WebhookCheckStatus::Configured => {
                    tracing::info!(
                        "the upstream webhook subscribes to every trigger the server reads"
                    )
                }
                WebhookCheckStatus::Missing => tracing::warn!(
                    missing = %check.missing_triggers.join(","),
                    "the upstream webhook lacks triggers the server reads: delivery reports for them will not arrive"
                ),
                WebhookCheckStatus::Unknown => tracing::warn!(
                    "cannot tell whether the upstream webhook is set up: {}",
                    check.detail.as_deref().unwrap_or_default()
                ),
                WebhookCheckStatus::Unchecked => {}
            }
            last = Some(check.status);
        }
        actors.tracker.set_webhook_check(check);
        let wait = if failed {
            interval.min(RETRY_AFTER_FAILURE)
        } else {
            interval
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ct.cancelled() => return,
        }
    }
}
