//! Outbound webhooks: the simulator POSTs the spec's envelope to every webhook whose triggers
//! match, with the webhook's secret in `X-API-Key`.
//!
//! Events are queued by the routes and sent by one task. Events for the same webhook that are
//! queued within a short window travel in one POST (the API does this too, so receivers must
//! handle several events per envelope). A POST is retried like SunCo: up to 5 attempts with
//! exponential spacing, on any non-2xx answer or a timeout, except 400, 401, 403, 404 and 406,
//! which are final. Every attempt is recorded for the admin route.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::sunco::ids::now_timestamp;
use crate::sunco::wire::{AppRef, Event, WebhookEnvelope, WebhookRef};

pub(crate) const MAX_ATTEMPTS: u32 = 5;
const MAX_EVENTS_PER_POST: usize = 10;
const MAX_RECORDED_ATTEMPTS: usize = 10_000;

/// Where one event goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) app_id: String,
    pub(crate) webhook_id: String,
    pub(crate) url: String,
    pub(crate) secret: String,
}

#[derive(Debug, Clone, Copy)]
pub struct WebhookTiming {
    /// How long the sender waits for more events to share a POST.
    pub batch_window: Duration,
    /// Delay before the second attempt; doubles for each further one.
    pub retry_base: Duration,
    /// How long one attempt may take.
    pub(crate) timeout: Duration,
}

impl Default for WebhookTiming {
    fn default() -> Self {
        Self {
            batch_window: Duration::from_millis(20),
            retry_base: Duration::from_secs(2),
            timeout: Duration::from_secs(20),
        }
    }
}

/// One POST attempt, as the admin route shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attempt {
    pub(crate) webhook_id: String,
    pub(crate) target: String,
    pub(crate) attempt: u32,
    pub(crate) event_ids: Vec<String>,
    pub(crate) event_types: Vec<String>,
    /// The HTTP status, or `None` when the request failed (refused, timed out).
    pub(crate) status: Option<u16>,
    pub(crate) error: Option<String>,
    /// Whether another attempt follows.
    pub(crate) will_retry: bool,
    pub(crate) at: String,
}

#[derive(Clone)]
pub(crate) struct WebhookBus {
    tx: mpsc::UnboundedSender<(Target, Event)>,
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl WebhookBus {
    /// Starts the sender task.
    pub(crate) fn start(timing: WebhookTiming) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let client = reqwest::Client::builder()
            .timeout(timing.timeout)
            .build()
            .unwrap_or_default();
        tokio::spawn(run(rx, client, timing, attempts.clone()));
        Self { tx, attempts }
    }

    pub(crate) fn emit(&self, target: Target, event: Event) {
        // The receiver lives as long as the runtime; a send error means shutdown.
        let _ = self.tx.send((target, event));
    }

    pub(crate) fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut a) = self.attempts.lock() {
            a.clear();
        }
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<(Target, Event)>,
    client: reqwest::Client,
    timing: WebhookTiming,
    attempts: Arc<Mutex<Vec<Attempt>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut pending = vec![first];
        let deadline = tokio::time::Instant::now() + timing.batch_window;
        while let Ok(Some(next)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            pending.push(next);
        }
        // Group by webhook, keeping event order, at most MAX_EVENTS_PER_POST per POST.
        let mut groups: BTreeMap<String, (Target, Vec<Vec<Event>>)> = BTreeMap::new();
        for (target, event) in pending {
            let entry = groups
                .entry(target.webhook_id.clone())
                .or_insert_with(|| (target.clone(), vec![Vec::new()]));
            if entry
                .1
                .last()
                .is_some_and(|b| b.len() >= MAX_EVENTS_PER_POST)
            {
                entry.1.push(Vec::new());
            }
            if let Some(batch) = entry.1.last_mut() {
                batch.push(event);
            }
        }
        for (_, (target, batches)) in groups {
            for events in batches {
                tokio::spawn(deliver(
                    client.clone(),
                    timing,
                    target.clone(),
                    events,
                    attempts.clone(),
                ));
            }
        }
    }
}

/// Whether SunCo would try again after this answer.
pub(crate) fn retryable(status: u16) -> bool {
    !(200..300).contains(&status) && !matches!(status, 400 | 401 | 403 | 404 | 406)
}

async fn deliver(
    client: reqwest::Client,
    timing: WebhookTiming,
    target: Target,
    events: Vec<Event>,
    attempts: Arc<Mutex<Vec<Attempt>>>,
) {
    let envelope = WebhookEnvelope {
        app: AppRef {
            id: target.app_id.clone(),
        },
        webhook: WebhookRef {
            id: target.webhook_id.clone(),
            version: "v2".to_owned(),
        },
        events,
    };
    let event_ids: Vec<String> = envelope.events.iter().map(|e| e.id.clone()).collect();
    let event_types: Vec<String> = envelope.events.iter().map(|e| e.kind.clone()).collect();
    let mut delay = timing.retry_base;
    for attempt in 1..=MAX_ATTEMPTS {
        let result = client
            .post(&target.url)
            .header("X-API-Key", &target.secret)
            .json(&envelope)
            .send()
            .await;
        let (status, error) = match result {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) => (
                None,
                Some(if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    "connection failed".to_owned()
                }),
            ),
        };
        let again = status.is_none_or(retryable) && attempt < MAX_ATTEMPTS;
        if let Ok(mut list) = attempts.lock() {
            if list.len() >= MAX_RECORDED_ATTEMPTS {
                list.remove(0);
            }
            list.push(Attempt {
                webhook_id: target.webhook_id.clone(),
                target: target.url.clone(),
                attempt,
                event_ids: event_ids.clone(),
                event_types: event_types.clone(),
                status,
                error,
                will_retry: again,
                at: now_timestamp(),
            });
        }
        if !again {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2);
    }
}
