//! Delivery record.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{BoxFuture, StoreError};

/// Bounds of what a delivery record keeps.
#[derive(Debug, Clone)]
pub struct DeliveryLimits {
    /// Messages whose delivery events are kept.
    pub messages: usize,
    /// Failures kept app-wide.
    pub(crate) failures: usize,
    /// Messages remembered for `get_message`.
    pub(crate) seen_messages: usize,
    /// Event ids remembered for deduplication.
    pub(crate) event_ids: usize,
    /// Conversations the index keeps (the least recently active forgotten first).
    pub conversations: usize,
    /// The index forgets a conversation quiet for longer than this.
    pub conversation_max_age: Duration,
    /// Anything older than this is dropped.
    pub(crate) max_age: Duration,
}

impl Default for DeliveryLimits {
    fn default() -> Self {
        Self {
            messages: 20_000,
            failures: 2_000,
            seen_messages: 5_000,
            event_ids: 50_000,
            conversations: 10_000,
            conversation_max_age: Duration::from_secs(24 * 3600),
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// One delivery event to keep for a message, as the JSON the tools show.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryEntry {
    pub message_id: String,
    /// The conversation the event named, if any.
    pub(crate) conversation_id: Option<String>,
    pub(crate) event: serde_json::Value,
    /// For a failure, the failure as `list_delivery_failures` shows it.
    pub(crate) failure: Option<serde_json::Value>,
}

/// A message's delivery events, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryEvents {
    /// The first conversation id an event named.
    pub conversation_id: Option<String>,
    pub events: Vec<serde_json::Value>,
}

/// A message the server has seen, as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEntry {
    pub message_id: String,
    pub conversation_id: String,
    pub message: String,
}

/// One webhook event to record: its id (to drop the repeats of a retried delivery) and what to
/// keep of it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub event_id: String,
    pub keep: Keep,
}

/// What an event leaves in the record.
#[derive(Debug, Clone, PartialEq)]
pub enum Keep {
    Delivery(DeliveryEntry),
    Seen(SeenEntry),
    /// Only its id (an event the server cannot use: its repeats are still repeats).
    Nothing,
}

/// What the webhooks said about messages: delivery events per message, recent failures, the
/// event ids already received, the messages seen, and when the last event arrived.
///
/// Invariants: `record` keeps each event id once, and keeps what a first sight carries in the
/// same step (a batch that fails leaves nothing marked, so the upstream's retry is recorded);
/// it answers one flag per event, in order; events of one message are kept in the order
/// recorded, with the first conversation id named; failures list newest first, filtered by
/// conversation; everything is bounded in count and age, the oldest forgotten first.
pub trait DeliveryStore: Send + Sync + std::fmt::Debug {
    /// Records a batch; for each event, whether it was seen now for the first time.
    fn record(&self, events: Vec<EventRecord>) -> BoxFuture<'_, Result<Vec<bool>, StoreError>>;
    /// Remembers messages the server sent or found (no event id: kept as given).
    fn remember(&self, messages: Vec<SeenEntry>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Notes that an event arrived at `at` (Unix milliseconds); the latest is kept.
    fn note_event(&self, at: i64) -> BoxFuture<'_, Result<(), StoreError>>;
    /// When the last event arrived (Unix milliseconds), if one has.
    fn last_event(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>>;
    fn events<'a>(
        &'a self,
        message_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<DeliveryEvents>, StoreError>>;
    fn failures<'a>(
        &'a self,
        conversation_id: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, StoreError>>;
    fn seen<'a>(
        &'a self,
        message_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SeenEntry>, StoreError>>;
}

/// [`DeliveryStore`] in this process's memory.
#[derive(Debug)]
pub(crate) struct MemoryDeliveryStore {
    limits: DeliveryLimits,
    inner: Mutex<DeliveryInner>,
}

#[derive(Debug, Default)]
struct DeliveryInner {
    event_ids: std::collections::HashSet<String>,
    event_order: VecDeque<String>,
    records: HashMap<String, (Instant, DeliveryEvents)>,
    record_order: VecDeque<String>,
    failures: VecDeque<(Instant, Option<String>, serde_json::Value)>,
    seen: HashMap<String, SeenEntry>,
    seen_order: VecDeque<String>,
    last_event: Option<i64>,
}

impl DeliveryInner {
    fn first_sight(&mut self, limits: &DeliveryLimits, id: &str) -> bool {
        if !self.event_ids.insert(id.to_owned()) {
            return false;
        }
        self.event_order.push_back(id.to_owned());
        while self.event_order.len() > limits.event_ids {
            if let Some(old) = self.event_order.pop_front() {
                self.event_ids.remove(&old);
            }
        }
        true
    }

    fn append(&mut self, e: DeliveryEntry, now: Instant) {
        let record = self.records.entry(e.message_id.clone()).or_insert_with(|| {
            self.record_order.push_back(e.message_id.clone());
            (
                now,
                DeliveryEvents {
                    conversation_id: None,
                    events: vec![],
                },
            )
        });
        if record.1.conversation_id.is_none() {
            record.1.conversation_id = e.conversation_id.clone();
        }
        record.1.events.push(e.event);
        if let Some(f) = e.failure {
            self.failures.push_back((now, e.conversation_id, f));
        }
    }

    fn remember(&mut self, limits: &DeliveryLimits, m: SeenEntry) {
        let id = m.message_id.clone();
        if self.seen.insert(id.clone(), m).is_none() {
            self.seen_order.push_back(id);
        }
        while self.seen_order.len() > limits.seen_messages {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    fn expire(&mut self, limits: &DeliveryLimits, now: Instant) {
        let old = |at: &Instant| now.saturating_duration_since(*at) > limits.max_age;
        while self.failures.front().is_some_and(|(at, _, _)| old(at))
            || self.failures.len() > limits.failures
        {
            self.failures.pop_front();
        }
        while let Some(id) = self.record_order.front() {
            let drop = self.records.get(id).is_none_or(|(at, _)| old(at))
                || self.record_order.len() > limits.messages;
            if !drop {
                break;
            }
            if let Some(id) = self.record_order.pop_front() {
                self.records.remove(&id);
            }
        }
    }
}

impl MemoryDeliveryStore {
    pub(crate) fn new(limits: DeliveryLimits) -> Self {
        Self {
            limits,
            inner: Mutex::new(DeliveryInner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, DeliveryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl DeliveryStore for MemoryDeliveryStore {
    fn record(&self, events: Vec<EventRecord>) -> BoxFuture<'_, Result<Vec<bool>, StoreError>> {
        Box::pin(async move {
            let now = Instant::now();
            let mut inner = self.inner();
            let mut firsts = Vec::with_capacity(events.len());
            for e in events {
                let first = inner.first_sight(&self.limits, &e.event_id);
                if first {
                    match e.keep {
                        Keep::Delivery(d) => inner.append(d, now),
                        Keep::Seen(m) => inner.remember(&self.limits, m),
                        Keep::Nothing => {}
                    }
                }
                firsts.push(first);
            }
            inner.expire(&self.limits, now);
            Ok(firsts)
        })
    }

    fn remember(&self, messages: Vec<SeenEntry>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut inner = self.inner();
            for m in messages {
                inner.remember(&self.limits, m);
            }
            Ok(())
        })
    }

    fn note_event(&self, at: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut inner = self.inner();
            inner.last_event = Some(inner.last_event.map_or(at, |l| l.max(at)));
            Ok(())
        })
    }

    fn last_event(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move { Ok(self.inner().last_event) })
    }

    fn events<'a>(
        &'a self,
        message_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<DeliveryEvents>, StoreError>> {
        Box::pin(async move {
            let mut inner = self.inner();
            inner.expire(&self.limits, Instant::now());
            Ok(inner.records.get(message_id).map(|(_, r)| r.clone()))
        })
    }

    fn failures<'a>(
        &'a self,
        conversation_id: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, StoreError>> {
        Box::pin(async move {
            let mut inner = self.inner();
            inner.expire(&self.limits, Instant::now());
            Ok(inner
                .failures
                .iter()
                .rev()
                .filter(|(_, c, _)| conversation_id.is_none_or(|want| c.as_deref() == Some(want)))
                .take(limit)
                .map(|(_, _, f)| f.clone())
                .collect())
        })
    }

    fn seen<'a>(
        &'a self,
        message_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SeenEntry>, StoreError>> {
        Box::pin(async move { Ok(self.inner().seen.get(message_id).cloned()) })
    }
}
