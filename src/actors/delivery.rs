//! The delivery tracker: what the webhooks said about each message, fed by `POST /webhooks/sunco`.
//!
//! Delivery is asynchronous in Sunshine Conversations: a sent message is later confirmed to the
//! channel, to the user, or reported failed, only through webhook events. This actor keeps those
//! events per message and the failures per conversation, bounded in count and age, dedupes on
//! event id (the API retries deliveries), and remembers the messages it has seen (send results and
//! `conversation:message` events) so `get_message` can answer without scanning.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Slot, ask};
use crate::error::CallError;
use crate::sunco::wire::{DeliveryPayload, Event, Message, StoredJson, event_type};
use crate::telemetry::{Metrics, kv};

/// Bounds of what the tracker keeps.
#[derive(Debug, Clone)]
pub struct TrackerLimits {
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

impl Default for TrackerLimits {
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

/// What the tracker is started with.
#[derive(Debug, Clone)]
pub struct TrackerArgs {
    pub limits: TrackerLimits,
    pub metrics: Arc<Metrics>,
}

/// One delivery event as an agent reads it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryEvent {
    pub event_id: String,
    /// `channel` (handed to the channel), `user` (the user's device got it) or `failure`.
    pub kind: String,
    /// When the upstream created the event.
    pub created_at: String,
    /// The channel type the message went to (`web`, `messenger`, `whatsapp`, ...).
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    pub user_id: String,
    pub is_final_event: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<DeliveryFailureReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DeliveryFailureReason {
    pub code: String,
    pub message: String,
}

/// A failed delivery, as `list_delivery_failures` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryFailure {
    pub message_id: String,
    pub conversation_id: String,
    pub user_id: String,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    pub code: String,
    pub reason: String,
    pub created_at: String,
    pub event_id: String,
}

/// What the tracker knows about one message.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub message_id: String,
    pub conversation_id: String,
    pub events: Vec<DeliveryEvent>,
}

/// A message this server has seen, with its conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenMessage {
    pub conversation_id: String,
    pub message: Message,
}

pub enum TrackerMsg {
    /// Events from one webhook POST, with the span of the request that brought them.
    Events(Vec<Event>, tracing::Span),
    /// A message this server sent (or otherwise saw).
    Remember { message_id: String, kept: Box<Kept> },
    Status {
        message_id: String,
        reply: oneshot::Sender<Option<DeliveryRecord>>,
    },
    Failures {
        conversation_id: Option<String>,
        limit: usize,
        reply: oneshot::Sender<Vec<DeliveryFailure>>,
    },
    Seen {
        message_id: String,
        reply: oneshot::Sender<Option<Kept>>,
    },
}

pub struct DeliveryTracker;

pub struct TrackerState {
    limits: TrackerLimits,
    metrics: Arc<Metrics>,
    event_ids: HashSet<String>,
    event_order: VecDeque<String>,
    records: HashMap<String, (Instant, DeliveryRecord)>,
    record_order: VecDeque<String>,
    failures: VecDeque<(Instant, DeliveryFailure)>,
    seen: HashMap<String, Kept>,
    seen_order: VecDeque<String>,
}

/// A seen message as the tracker keeps it: its JSON text.
#[derive(Debug, Clone)]
pub struct Kept {
    conversation_id: String,
    message: StoredJson<Message>,
}

impl Kept {
    fn of(conversation_id: &str, message: &Message) -> Self {
        Kept {
            conversation_id: conversation_id.to_owned(),
            message: StoredJson::new(message),
        }
    }

    fn read(&self) -> Option<SeenMessage> {
        Some(SeenMessage {
            conversation_id: self.conversation_id.clone(),
            message: self.message.get()?,
        })
    }
}

impl TrackerState {
    fn new(args: TrackerArgs) -> Self {
        Self {
            limits: args.limits,
            metrics: args.metrics,
            event_ids: HashSet::new(),
            event_order: VecDeque::new(),
            records: HashMap::new(),
            record_order: VecDeque::new(),
            failures: VecDeque::new(),
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
        }
    }

    /// True the first time an event id is seen.
    fn first_sight(&mut self, id: &str) -> bool {
        if !self.event_ids.insert(id.to_owned()) {
            return false;
        }
        self.event_order.push_back(id.to_owned());
        while self.event_order.len() > self.limits.event_ids {
            if let Some(old) = self.event_order.pop_front() {
                self.event_ids.remove(&old);
            }
        }
        true
    }

    fn remember(&mut self, id: String, seen: Kept) {
        if self.seen.insert(id.clone(), seen).is_none() {
            self.seen_order.push_back(id);
        }
        while self.seen_order.len() > self.limits.seen_messages {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let max_age = self.limits.max_age;
        let old = |at: &Instant| now.saturating_duration_since(*at) > max_age;
        while self.failures.front().is_some_and(|(at, _)| old(at)) {
            self.failures.pop_front();
        }
        while self.failures.len() > self.limits.failures {
            self.failures.pop_front();
        }
        while let Some(id) = self.record_order.front() {
            let drop = self.records.get(id).is_none_or(|(at, _)| old(at))
                || self.record_order.len() > self.limits.messages;
            if !drop {
                break;
            }
            if let Some(id) = self.record_order.pop_front() {
                self.records.remove(&id);
            }
        }
    }

    fn record(&mut self, event: &Event) {
        let kind = match event.kind.as_str() {
            event_type::DELIVERY_CHANNEL => "channel",
            event_type::DELIVERY_USER => "user",
            event_type::DELIVERY_FAILURE => "failure",
            event_type::MESSAGE => {
                if let Some((id, seen)) = message_of(event) {
                    self.remember(id, seen);
                }
                return;
            }
            _ => return,
        };
        let payload: DeliveryPayload = match serde_json::from_value(event.payload.clone()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(event_type = %event.kind, "ignoring a delivery event whose payload does not parse: {e}");
                return;
            }
        };
        let mut attrs = vec![
            kv("type", kind),
            kv("channel", payload.destination.kind.clone()),
        ];
        if let Some(e) = &payload.error {
            // The API's error codes are a short fixed list: a safe attribute.
            attrs.push(kv("code", e.code.clone()));
        }
        self.metrics.delivery_events.add(1, &attrs);
        let now = Instant::now();
        let error = payload.error.as_ref().map(|e| DeliveryFailureReason {
            code: e.code.clone(),
            message: e.message.clone(),
        });
        let view = DeliveryEvent {
            event_id: event.id.clone(),
            kind: kind.to_owned(),
            created_at: event.created_at.clone(),
            channel: payload.destination.kind.clone(),
            integration_id: payload.destination.integration_id.clone(),
            user_id: payload.user.id.clone(),
            is_final_event: payload.is_final_event,
            error: error.clone(),
        };
        let message_id = payload.message.id.clone();
        let entry = self.records.entry(message_id.clone()).or_insert_with(|| {
            self.record_order.push_back(message_id.clone());
            (
                now,
                DeliveryRecord {
                    message_id: message_id.clone(),
                    conversation_id: payload.conversation.id.clone(),
                    events: vec![],
                },
            )
        });
        entry.1.events.push(view);
        if kind == "failure" {
            let error = error.unwrap_or(DeliveryFailureReason {
                code: "unknown".into(),
                message: "the upstream gave no reason".into(),
            });
            self.failures.push_back((
                now,
                DeliveryFailure {
                    message_id,
                    conversation_id: payload.conversation.id,
                    user_id: payload.user.id,
                    channel: payload.destination.kind,
                    integration_id: payload.destination.integration_id,
                    code: error.code,
                    reason: error.message,
                    created_at: event.created_at.clone(),
                    event_id: event.id.clone(),
                },
            ));
        }
        self.expire(now);
    }
}

/// The message and conversation of a `conversation:message` event.
fn message_of(event: &Event) -> Option<(String, Kept)> {
    let conversation_id = event.payload.get("conversation")?.get("id")?.as_str()?;
    let message: Message = serde_json::from_value(event.payload.get("message")?.clone()).ok()?;
    Some((message.id.clone(), Kept::of(conversation_id, &message)))
}

impl Actor for DeliveryTracker {
    type Msg = TrackerMsg;
    type State = TrackerState;
    type Arguments = TrackerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<TrackerMsg>,
        args: TrackerArgs,
    ) -> Result<TrackerState, ActorProcessingErr> {
        Ok(TrackerState::new(args))
    }

    async fn handle(
        &self,
        _myself: ActorRef<TrackerMsg>,
        msg: TrackerMsg,
        state: &mut TrackerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TrackerMsg::Events(events, webhook) => {
                let span = tracing::info_span!(
                    parent: &webhook,
                    "delivery.record",
                    otel.name = "delivery record",
                    events = events.len()
                );
                let _entered = span.enter();
                for event in &events {
                    if state.first_sight(&event.id) {
                        state.record(event);
                    }
                }
            }
            TrackerMsg::Remember { message_id, kept } => state.remember(message_id, *kept),
            TrackerMsg::Status { message_id, reply } => {
                state.expire(Instant::now());
                let _ = reply.send(state.records.get(&message_id).map(|(_, r)| r.clone()));
            }
            TrackerMsg::Failures {
                conversation_id,
                limit,
                reply,
            } => {
                state.expire(Instant::now());
                let list = state
                    .failures
                    .iter()
                    .rev()
                    .map(|(_, f)| f)
                    .filter(|f| {
                        conversation_id
                            .as_deref()
                            .is_none_or(|c| f.conversation_id == c)
                    })
                    .take(limit)
                    .cloned()
                    .collect();
                let _ = reply.send(list);
            }
            TrackerMsg::Seen { message_id, reply } => {
                let _ = reply.send(state.seen.get(&message_id).cloned());
            }
        }
        Ok(())
    }
}

/// How the rest of the server feeds and reads the tracker.
#[derive(Clone)]
pub struct TrackerHandle {
    pub(crate) slot: Arc<Slot<TrackerMsg>>,
}

impl TrackerHandle {
    fn until() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    /// Hands events over without waiting for them to be processed. Fails only when no tracker
    /// is running (the webhook route then answers 503 so the upstream retries).
    pub fn push(&self, events: Vec<Event>) -> Result<(), CallError> {
        let actor = self
            .slot
            .current()
            .ok_or_else(|| self.slot.unavailable("restarting".into()))?;
        actor
            .send_message(TrackerMsg::Events(events, tracing::Span::current()))
            .map_err(|_| self.slot.unavailable("restarting".into()))
    }

    pub fn remember(&self, conversation_id: &str, message: &Message) {
        if let Some(actor) = self.slot.current() {
            let _ = actor.send_message(TrackerMsg::Remember {
                message_id: message.id.clone(),
                kept: Box::new(Kept::of(conversation_id, message)),
            });
        }
    }

    pub async fn status(&self, message_id: &str) -> Result<Option<DeliveryRecord>, CallError> {
        ask(&self.slot, Self::until(), |reply| TrackerMsg::Status {
            message_id: message_id.to_owned(),
            reply,
        })
        .await
    }

    pub async fn failures(
        &self,
        conversation_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveryFailure>, CallError> {
        ask(&self.slot, Self::until(), |reply| TrackerMsg::Failures {
            conversation_id: conversation_id.map(str::to_owned),
            limit,
            reply,
        })
        .await
    }

    pub async fn seen(&self, message_id: &str) -> Result<Option<SeenMessage>, CallError> {
        let kept = ask(&self.slot, Self::until(), |reply| TrackerMsg::Seen {
            message_id: message_id.to_owned(),
            reply,
        })
        .await?;
        // Decoded here, in the caller's task, not in the actor's.
        Ok(kept.as_ref().and_then(Kept::read))
    }
}
