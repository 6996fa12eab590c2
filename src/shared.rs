//! State that several replicas will have to share, each piece behind one small trait.
//!
//! Each trait is shaped by what a networked store can do: its methods are async and fallible
//! ([`StoreError`]), and batch where a round trip matters. The in-memory implementations here
//! are the embedded default (one process, nothing else to run). Each trait's invariants are
//! written down once as a contract ([`contract`]): a set of checks any implementation must pass,
//! run against every implementation.
//!
//! - [`InboundLimits`]: the per-token inbound rate limits of `/mcp`;
//! - [`ConversationIndex`]: the conversations the server has heard of through webhooks;
//! - [`Invalidation`]: "the switchboard changed", to every cache that holds it;
//! - [`IdempotencyStore`]: the idempotency records of `send_message` and the per-key wait;
//! - [`DeliveryStore`]: what the webhooks said about messages, and the event ids received;
//! - [`RateBudget`]: the upstream requests per second of the whole fleet, its pause and its
//!   slow-down after a 429.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::config::RequestRate;

/// A boxed future, for traits used as `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A shared store could not answer (unreachable, too slow). What depends on it fails closed or
/// falls back, as its caller decides; it never treats the silence as an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared store is unavailable: {0}")]
pub struct StoreError(pub String);

// ---------------------------------------------------------------------------------------------
// Inbound limits

/// Per-token inbound rate limits (token buckets), the same for every replica.
///
/// Invariants: a key starts with a full bucket (`rate.burst` requests at once); it refills at
/// `rate.per_second`; a refused request takes nothing and says how long until one would pass;
/// keys are independent.
pub trait InboundLimits: Send + Sync + std::fmt::Debug {
    /// Takes one request from `key`'s bucket: `Ok(None)` when it passes, `Ok(Some(wait))` when
    /// the bucket is empty for `wait` longer.
    fn take<'a>(
        &'a self,
        key: &'a str,
        rate: RequestRate,
    ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>>;
}

/// [`InboundLimits`] in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryInboundLimits {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl InboundLimits for MemoryInboundLimits {
    fn take<'a>(
        &'a self,
        key: &'a str,
        rate: RequestRate,
    ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
        Box::pin(async move {
            let now = Instant::now();
            let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            let burst = f64::from(rate.burst);
            let (tokens, at) = buckets.entry(key.to_owned()).or_insert((burst, now));
            *tokens =
                (*tokens + now.duration_since(*at).as_secs_f64() * rate.per_second).min(burst);
            *at = now;
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                Ok(None)
            } else {
                Ok(Some(Duration::from_secs_f64(
                    (1.0 - *tokens) / rate.per_second,
                )))
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Conversation index

/// What the index knows of one conversation, from the webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationEntry {
    pub conversation_id: String,
    /// The active switchboard integration's id, when known.
    pub active_switchboard_integration: Option<String>,
    /// The pending switchboard integration's id, when known.
    pub pending_switchboard_integration: Option<String>,
    /// When the conversation was created (ISO 8601), when known.
    pub created_at: Option<String>,
    /// The last activity heard of (ISO 8601); entries are listed newest first by it.
    pub last_activity_at: String,
    /// The channel of the last user message, when known.
    pub last_user_channel: Option<String>,
    /// Whether the last message came from the user.
    pub awaiting_reply: bool,
}

/// The conversations the server has heard of, bounded in count.
///
/// Invariants: an upsert replaces what the index knew of that conversation; `get` returns the
/// last upsert; `recent` lists newest activity first, at most `limit`; past its bound the index
/// forgets the conversations least recently active first; `remove` forgets one.
pub trait ConversationIndex: Send + Sync + std::fmt::Debug {
    fn upsert(&self, entries: Vec<ConversationEntry>) -> BoxFuture<'_, Result<(), StoreError>>;
    fn get<'a>(
        &'a self,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConversationEntry>, StoreError>>;
    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ConversationEntry>, StoreError>>;
    fn remove<'a>(&'a self, conversation_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// [`ConversationIndex`] in this process's memory, holding `capacity` conversations at most.
#[derive(Debug)]
pub struct MemoryConversationIndex {
    capacity: usize,
    entries: Mutex<(HashMap<String, ConversationEntry>, VecDeque<String>)>,
}

impl MemoryConversationIndex {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }
}

impl ConversationIndex for MemoryConversationIndex {
    fn upsert(&self, entries: Vec<ConversationEntry>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let (map, order) = &mut *guard;
            for entry in entries {
                let id = entry.conversation_id.clone();
                if map.insert(id.clone(), entry).is_some() {
                    order.retain(|o| *o != id);
                }
                order.push_back(id);
                while order.len() > self.capacity {
                    if let Some(old) = order.pop_front() {
                        map.remove(&old);
                    }
                }
            }
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConversationEntry>, StoreError>> {
        Box::pin(async move {
            let guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            Ok(guard.0.get(conversation_id).cloned())
        })
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ConversationEntry>, StoreError>> {
        Box::pin(async move {
            let guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let mut all: Vec<ConversationEntry> = guard.0.values().cloned().collect();
            all.sort_by(|a, b| b.last_activity_at.cmp(&a.last_activity_at));
            all.truncate(limit);
            Ok(all)
        })
    }

    fn remove<'a>(&'a self, conversation_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let (map, order) = &mut *guard;
            if map.remove(conversation_id).is_some() {
                order.retain(|o| o != conversation_id);
            }
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Invalidation

/// "The switchboard changed": published by whoever learns it (a refused control call), heard
/// by every cache that holds the routing picture, in every replica.
///
/// Invariants: every subscriber hears every publish made after it subscribed; a subscriber
/// that fell behind or lost its connection hears [`Heard::Lost`] and must drop everything,
/// since it cannot know what it missed.
pub trait Invalidation: Send + Sync + std::fmt::Debug {
    fn publish(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    fn subscribe(&self) -> Subscription;
}

/// What a subscriber hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// The switchboard changed.
    Changed,
    /// Notices may have been missed: drop everything.
    Lost,
    /// No more notices will come.
    Closed,
}

/// A subscription to [`Invalidation`] notices.
#[derive(Debug)]
pub struct Subscription(broadcast::Receiver<()>);

impl Subscription {
    /// The next notice.
    pub async fn next(&mut self) -> Heard {
        match self.0.recv().await {
            Ok(()) => Heard::Changed,
            Err(broadcast::error::RecvError::Lagged(_)) => Heard::Lost,
            Err(broadcast::error::RecvError::Closed) => Heard::Closed,
        }
    }
}

/// [`Invalidation`] within this process.
#[derive(Debug)]
pub struct MemoryInvalidation(broadcast::Sender<()>);

impl Default for MemoryInvalidation {
    fn default() -> Self {
        Self(broadcast::channel(64).0)
    }
}

impl Invalidation for MemoryInvalidation {
    fn publish(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        // No subscriber yet is not an error: nothing holds a picture to drop.
        let _ = self.0.send(());
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self) -> Subscription {
        Subscription(self.0.subscribe())
    }
}

// ---------------------------------------------------------------------------------------------
// Idempotency records of sends

/// What has happened to an idempotency key so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendState {
    /// Never sent, or refused before anything was stored.
    Fresh,
    /// Sent at least once without a clear answer: check the conversation before sending again.
    Uncertain,
    /// Stored upstream; the messages as JSON text.
    Sent(String),
}

/// An idempotency key's record: the fingerprint of the message it was first used for, and what
/// happened since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRecord {
    pub message: u64,
    pub state: SendState,
}

/// A held key: one send at a time per key. Dropping it releases the key.
pub trait SendLease: Send {
    fn record(&self) -> &SendRecord;
    /// Stores `record` for the key (kept while the lease is held, and after).
    fn set(&mut self, record: SendRecord) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// The idempotency records of `send_message`, per conversation (`scope`) and key.
///
/// Invariants: a key never seen starts as `{message, Fresh}` with the fingerprint of the
/// acquiring call; what a lease sets is what the next holder reads; while one lease holds a key,
/// another `acquire` of it waits; keys of different scopes are independent. (A store shared by
/// replicas bounds a lease's life, and a record left without a final state by a holder that
/// died reads as `Uncertain`.)
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    fn acquire<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        message: u64,
    ) -> BoxFuture<'a, Result<Box<dyn SendLease>, StoreError>>;
}

/// [`IdempotencyStore`] in this process's memory: `capacity` keys at most, each kept for
/// `retention`.
#[derive(Debug)]
pub struct MemoryIdempotency {
    keys: moka::future::Cache<(String, String), std::sync::Arc<tokio::sync::Mutex<SendRecord>>>,
}

impl MemoryIdempotency {
    pub fn new(capacity: u64, retention: Duration) -> Self {
        Self {
            keys: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(retention)
                .build(),
        }
    }
}

struct MemoryLease(tokio::sync::OwnedMutexGuard<SendRecord>);

impl SendLease for MemoryLease {
    fn record(&self) -> &SendRecord {
        &self.0
    }

    fn set(&mut self, record: SendRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        *self.0 = record;
        Box::pin(async { Ok(()) })
    }
}

impl IdempotencyStore for MemoryIdempotency {
    fn acquire<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        message: u64,
    ) -> BoxFuture<'a, Result<Box<dyn SendLease>, StoreError>> {
        Box::pin(async move {
            let entry = self
                .keys
                .get_with((scope.to_owned(), key.to_owned()), async {
                    std::sync::Arc::new(tokio::sync::Mutex::new(SendRecord {
                        message,
                        state: SendState::Fresh,
                    }))
                })
                .await;
            Ok(Box::new(MemoryLease(entry.lock_owned().await)) as Box<dyn SendLease>)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery record

/// Bounds of what a delivery record keeps.
#[derive(Debug, Clone)]
pub struct DeliveryLimits {
    /// Messages whose delivery events are kept.
    pub messages: usize,
    /// Failures kept app-wide.
    pub failures: usize,
    /// Messages remembered for `get_message`.
    pub seen_messages: usize,
    /// Event ids remembered for deduplication.
    pub event_ids: usize,
    /// Anything older than this is dropped.
    pub max_age: Duration,
}

impl Default for DeliveryLimits {
    fn default() -> Self {
        Self {
            messages: 20_000,
            failures: 2_000,
            seen_messages: 5_000,
            event_ids: 50_000,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// One delivery event to keep for a message, as the JSON the tools show.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryEntry {
    pub message_id: String,
    /// The conversation the event named, if any.
    pub conversation_id: Option<String>,
    pub event: serde_json::Value,
    /// For a failure, the failure as `list_delivery_failures` shows it.
    pub failure: Option<serde_json::Value>,
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
pub struct MemoryDeliveryStore {
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
    pub fn new(limits: DeliveryLimits) -> Self {
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

// ---------------------------------------------------------------------------------------------
// Upstream rate budget

/// What [`RateBudget::grant`] gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    /// Permits granted now (each is one upstream request), at most what was asked for.
    pub granted: u32,
    /// When fewer were granted: how long until the next permit.
    pub wait: Duration,
    /// Whether the wait is a pause a `Retry-After` imposed (no request may go before it ends).
    pub paused: bool,
}

/// The upstream rate budget: requests per second with a burst, for the whole fleet.
///
/// Invariants: it grants at most the burst at once and then refills at the current rate; a 429
/// halves the current rate (not below its floor) and takes what was left; a `Retry-After`
/// pauses every grant until it ends; each success raises the rate by a step back to the full
/// rate. (Queueing, the in-flight cap, deadlines and retries stay with each dispatcher.)
pub trait RateBudget: Send + Sync + std::fmt::Debug {
    fn grant(&self, want: u32) -> BoxFuture<'_, Result<Grant, StoreError>>;
    /// The upstream answered 429, with its `Retry-After` if any.
    fn throttled(&self, retry_after: Option<Duration>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// An upstream request succeeded.
    fn succeeded(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The current rate, requests per second (as last known).
    fn rate(&self) -> f64;
}

/// The numbers of a [`RateBudget`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetShape {
    /// The full rate, requests per second.
    pub rate: f64,
    pub burst: u32,
    /// The lowest share of the full rate 429s can push the rate down to.
    pub min_rate_share: f64,
}

/// [`RateBudget`] of this process alone.
#[derive(Debug)]
pub struct MemoryRateBudget {
    shape: BudgetShape,
    inner: Mutex<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    tokens: f64,
    refilled_at: Instant,
    rate: f64,
    paused_until: Option<Instant>,
}

impl MemoryRateBudget {
    pub fn new(shape: BudgetShape) -> Self {
        Self {
            shape,
            inner: Mutex::new(BudgetInner {
                tokens: f64::from(shape.burst),
                refilled_at: Instant::now(),
                rate: shape.rate,
                paused_until: None,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, BudgetInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RateBudget for MemoryRateBudget {
    fn grant(&self, want: u32) -> BoxFuture<'_, Result<Grant, StoreError>> {
        let now = Instant::now();
        let mut b = self.inner();
        let grant = if let Some(until) = b.paused_until.filter(|u| *u > now) {
            Grant {
                granted: 0,
                wait: until - now,
                paused: true,
            }
        } else {
            b.paused_until = None;
            let elapsed = now.saturating_duration_since(b.refilled_at).as_secs_f64();
            b.tokens = (b.tokens + elapsed * b.rate).min(f64::from(self.shape.burst));
            b.refilled_at = now;
            let granted = (b.tokens.floor().max(0.0) as u32).min(want);
            b.tokens -= f64::from(granted);
            let wait = if granted < want {
                Duration::from_secs_f64(((1.0 - b.tokens) / b.rate.max(0.001)).max(0.0))
            } else {
                Duration::ZERO
            };
            Grant {
                granted,
                wait,
                paused: false,
            }
        };
        Box::pin(async move { Ok(grant) })
    }

    fn throttled(&self, retry_after: Option<Duration>) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut b = self.inner();
        let floor = self.shape.rate * self.shape.min_rate_share;
        b.rate = (b.rate * 0.5).max(floor);
        b.tokens = b.tokens.min(0.0);
        if let Some(wait) = retry_after {
            let until = Instant::now() + wait;
            b.paused_until = Some(b.paused_until.map_or(until, |p| p.max(until)));
        }
        Box::pin(async { Ok(()) })
    }

    fn succeeded(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut b = self.inner();
        b.rate = (b.rate + self.shape.rate * 0.02).min(self.shape.rate);
        Box::pin(async { Ok(()) })
    }

    fn rate(&self) -> f64 {
        self.inner().rate
    }
}

// ---------------------------------------------------------------------------------------------
// Contracts

/// The invariants of each trait as checks any implementation must pass. Each panics, naming
/// the broken invariant, when one does not hold. Where they wait (2 s at most) they sleep, so
/// paused tokio time (`#[tokio::test(start_paused = true)]`) makes them instant for an
/// in-memory store; each uses its own keys, so a store may be shared between them.
#[doc(hidden)]
pub mod contract {
    use super::*;

    pub async fn inbound_limits(limits: &dyn InboundLimits) {
        let rate = RequestRate {
            per_second: 2.0,
            burst: 3,
        };
        for n in 0..3 {
            assert_eq!(
                limits.take("contract-a", rate).await,
                Ok(None),
                "a new key starts with a full bucket (request {n})"
            );
        }
        let wait = limits
            .take("contract-a", rate)
            .await
            .expect("answers")
            .expect("an empty bucket refuses");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "the wait is until one token refills: {wait:?}"
        );
        assert_eq!(
            limits.take("contract-b", rate).await,
            Ok(None),
            "keys are independent"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            limits.take("contract-a", rate).await,
            Ok(None),
            "the bucket refills at the rate"
        );
    }

    fn entry(id: &str, at: &str) -> ConversationEntry {
        ConversationEntry {
            conversation_id: id.to_owned(),
            active_switchboard_integration: Some("bot".to_owned()),
            pending_switchboard_integration: None,
            created_at: None,
            last_activity_at: at.to_owned(),
            last_user_channel: None,
            awaiting_reply: false,
        }
    }

    /// `index` must hold at most 3 conversations.
    pub async fn conversation_index(index: &dyn ConversationIndex) {
        let a = entry("contract-a", "2026-01-01T00:00:01.000Z");
        let b = entry("contract-b", "2026-01-01T00:00:02.000Z");
        index
            .upsert(vec![a.clone(), b.clone()])
            .await
            .expect("upsert");
        assert_eq!(index.get("contract-a").await, Ok(Some(a.clone())));
        let mut a2 = a.clone();
        a2.awaiting_reply = true;
        a2.last_activity_at = "2026-01-01T00:00:03.000Z".to_owned();
        index.upsert(vec![a2.clone()]).await.expect("upsert");
        assert_eq!(
            index.get("contract-a").await,
            Ok(Some(a2.clone())),
            "an upsert replaces what was known"
        );
        let recent = index.recent(10).await.expect("recent");
        let ids: Vec<&str> = recent.iter().map(|e| e.conversation_id.as_str()).collect();
        assert_eq!(ids, ["contract-a", "contract-b"], "newest activity first");
        assert_eq!(
            index.recent(1).await.expect("recent").len(),
            1,
            "at most limit"
        );
        index
            .upsert(vec![
                entry("contract-c", "2026-01-01T00:00:04.000Z"),
                entry("contract-d", "2026-01-01T00:00:05.000Z"),
            ])
            .await
            .expect("upsert");
        assert_eq!(
            index.get("contract-b").await,
            Ok(None),
            "past the bound, the least recently active is forgotten first"
        );
        index.remove("contract-a").await.expect("remove");
        assert_eq!(index.get("contract-a").await, Ok(None), "remove forgets");
    }

    pub async fn idempotency(store: &dyn IdempotencyStore) {
        let mut lease = store
            .acquire("contract-conv", "k1", 7)
            .await
            .expect("acquire");
        assert_eq!(
            lease.record(),
            &SendRecord {
                message: 7,
                state: SendState::Fresh
            },
            "a new key starts fresh with the caller's fingerprint"
        );
        let sent = SendRecord {
            message: 7,
            state: SendState::Sent("[]".to_owned()),
        };
        lease.set(sent.clone()).await.expect("set");
        // Held: another acquire of the key waits.
        let waiting = tokio::time::timeout(
            Duration::from_secs(1),
            store.acquire("contract-conv", "k1", 8),
        )
        .await;
        assert!(waiting.is_err(), "a held key makes the next holder wait");
        drop(lease);
        let again = store
            .acquire("contract-conv", "k1", 8)
            .await
            .expect("acquire");
        assert_eq!(again.record(), &sent, "the next holder reads what was set");
        let other = store
            .acquire("contract-other", "k1", 9)
            .await
            .expect("acquire");
        assert_eq!(
            other.record().state,
            SendState::Fresh,
            "keys of different scopes are independent"
        );
    }

    /// `store` must keep at most 2 failures and 3 event ids, for 2 seconds.
    pub async fn delivery(store: &dyn DeliveryStore) {
        let entry = |m: &str, c: Option<&str>, n: u32, failed: bool| DeliveryEntry {
            message_id: m.to_owned(),
            conversation_id: c.map(str::to_owned),
            event: serde_json::json!({"n": n}),
            failure: failed.then(|| serde_json::json!({"message": m, "n": n})),
        };
        let event = |id: &str, keep: Keep| EventRecord {
            event_id: id.to_owned(),
            keep,
        };
        let firsts = store
            .record(vec![
                event("e1", Keep::Delivery(entry("m1", None, 1, false))),
                event("e2", Keep::Delivery(entry("m1", Some("c1"), 2, true))),
                event("e1", Keep::Delivery(entry("m1", None, 9, false))),
                event("e3", Keep::Nothing),
            ])
            .await
            .expect("record");
        assert_eq!(
            firsts,
            [true, true, false, true],
            "one answer per event, in order; an id is new once, within a batch too"
        );
        let m1 = store.events("m1").await.expect("events").expect("m1 kept");
        assert_eq!(
            m1.conversation_id.as_deref(),
            Some("c1"),
            "the first conversation named"
        );
        assert_eq!(
            m1.events,
            [serde_json::json!({"n": 1}), serde_json::json!({"n": 2})],
            "events in the order recorded; a repeat keeps nothing"
        );
        store
            .record(vec![
                event("e4", Keep::Delivery(entry("m2", Some("c2"), 3, true))),
                event("e5", Keep::Delivery(entry("m3", Some("c1"), 4, true))),
            ])
            .await
            .expect("record");
        let all = store.failures(None, 10).await.expect("failures");
        assert_eq!(
            all.len(),
            2,
            "failures are bounded, the oldest forgotten first"
        );
        assert_eq!(all[0]["n"], 4, "newest first");
        let c1 = store.failures(Some("c1"), 10).await.expect("failures");
        assert_eq!(c1.len(), 1, "filtered by conversation");
        assert_eq!(c1[0]["n"], 4);
        // e1 .. e5 were seen; 3 ids are kept, so e1 is forgotten and e5 is not.
        let again = store
            .record(vec![event("e1", Keep::Nothing), event("e5", Keep::Nothing)])
            .await
            .expect("record");
        assert_eq!(
            again,
            [true, false],
            "ids are bounded, the oldest forgotten first"
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(store.events("m1").await, Ok(None), "events expire with age");
        assert_eq!(
            store.failures(None, 10).await,
            Ok(vec![]),
            "failures expire with age"
        );
        let seen = SeenEntry {
            message_id: "m9".to_owned(),
            conversation_id: "c9".to_owned(),
            message: "{}".to_owned(),
        };
        store.remember(vec![seen.clone()]).await.expect("remember");
        assert_eq!(
            store.seen("m9").await,
            Ok(Some(seen)),
            "a seen message is found"
        );
        assert_eq!(store.last_event().await, Ok(None));
        store.note_event(2_000).await.expect("note");
        store.note_event(1_000).await.expect("note");
        assert_eq!(
            store.last_event().await,
            Ok(Some(2_000)),
            "the latest is kept"
        );
    }

    /// `budget` must have rate 10/s, burst 3 and a floor of 1/s, used by nothing else.
    pub async fn rate_budget(budget: &dyn RateBudget) {
        let g = budget.grant(5).await.expect("grant");
        assert_eq!(g.granted, 3, "at most the burst at once");
        assert!(
            g.wait > Duration::ZERO && g.wait <= Duration::from_millis(100),
            "then the wait for one refill: {g:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            budget.grant(5).await.expect("grant").granted,
            2,
            "refills at the rate"
        );
        budget.throttled(None).await.expect("throttled");
        assert!((budget.rate() - 5.0).abs() < 1e-9, "a 429 halves the rate");
        for _ in 0..10 {
            budget.throttled(None).await.expect("throttled");
        }
        assert!((budget.rate() - 1.0).abs() < 1e-9, "not below the floor");
        budget.succeeded().await.expect("succeeded");
        assert!(budget.rate() > 1.0, "a success raises the rate by a step");
        budget
            .throttled(Some(Duration::from_secs(1)))
            .await
            .expect("throttled");
        let g = budget.grant(1).await.expect("grant");
        assert!(
            g.granted == 0 && g.paused && g.wait > Duration::from_millis(900),
            "a Retry-After pauses every grant: {g:?}"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(
            !budget.grant(1).await.expect("grant").paused,
            "the pause ends when it says"
        );
    }

    pub async fn invalidation(bus: &dyn Invalidation) {
        let mut first = bus.subscribe();
        let mut second = bus.subscribe();
        bus.publish().await.expect("publish");
        assert_eq!(first.next().await, Heard::Changed, "every subscriber hears");
        assert_eq!(
            second.next().await,
            Heard::Changed,
            "every subscriber hears"
        );
        let mut late = bus.subscribe();
        bus.publish().await.expect("publish");
        assert_eq!(
            late.next().await,
            Heard::Changed,
            "a later subscriber hears what follows"
        );
        for _ in 0..1000 {
            bus.publish().await.expect("publish");
        }
        let mut heard = vec![];
        while heard.last() != Some(&Heard::Lost) && heard.len() < 2000 {
            heard.push(first.next().await);
        }
        assert_eq!(
            heard.last(),
            Some(&Heard::Lost),
            "a subscriber that fell behind is told to drop everything"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn memory_inbound_limits_keep_the_contract() {
        contract::inbound_limits(&MemoryInboundLimits::default()).await;
    }

    #[tokio::test]
    async fn memory_conversation_index_keeps_the_contract() {
        contract::conversation_index(&MemoryConversationIndex::new(3)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_idempotency_keeps_the_contract() {
        let store = MemoryIdempotency::new(100, Duration::from_secs(3600));
        contract::idempotency(&store).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_delivery_store_keeps_the_contract() {
        let store = MemoryDeliveryStore::new(DeliveryLimits {
            failures: 2,
            event_ids: 3,
            max_age: Duration::from_secs(2),
            ..DeliveryLimits::default()
        });
        contract::delivery(&store).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_rate_budget_keeps_the_contract() {
        let budget = MemoryRateBudget::new(BudgetShape {
            rate: 10.0,
            burst: 3,
            min_rate_share: 0.1,
        });
        contract::rate_budget(&budget).await;
    }

    #[tokio::test]
    async fn memory_invalidation_keeps_the_contract() {
        contract::invalidation(&MemoryInvalidation::default()).await;
    }
}
