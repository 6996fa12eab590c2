//! The delivery tracker: what the webhooks said about each message, fed by `POST /webhooks/sunco`.
//!
//! Delivery is asynchronous in Sunshine Conversations: a sent message is later confirmed to the
//! channel, to the user, or reported failed, only through webhook events. This actor keeps those
//! events per message and the failures per conversation, bounded in count and age, dedupes on
//! event id (the API retries deliveries), and remembers the messages it has seen (send results and
//! `conversation:message` events) so `get_message` can answer without scanning.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Slot, ask};
use crate::error::CallError;
use crate::shared::{
    CLAIM_FIELD, Change, ClaimStore, ConversationIndex, ConversationNote, DeliveryEntry,
    DeliveryStore, EventRecord, Keep, SeenEntry, StoreError, WorkChange, WorkNote,
};
pub(crate) use crate::sunco::events::DeliveryKind;
use crate::sunco::events::{ConversationChange, DeliveryReport, Inbound, Reading, Unusable};
use crate::sunco::ids::{format_timestamp, from_unix_ms, now_unix_ms, parse_timestamp, unix_ms};
use crate::sunco::wire::{Message, event_type};
use crate::telemetry::{Metrics, kv};

/// Bounds of what the tracker keeps.
pub(crate) use crate::shared::DeliveryLimits as TrackerLimits;

/// What the tracker is started with.
#[derive(Debug, Clone)]
pub(crate) struct TrackerArgs {
    pub(crate) metrics: Arc<Metrics>,
    /// Where the record is kept; it outlives the actor's restarts.
    pub(crate) store: Arc<dyn DeliveryStore>,
    /// The conversations the webhooks tell of; it outlives the actor's restarts.
    pub(crate) index: Arc<dyn ConversationIndex>,
    /// The inbound work queue, fed the same events.
    pub(crate) claims: Arc<dyn ClaimStore>,
}

mod watch;

pub use watch::{Tracking, TrackingStatus, Watch, WebhookCheck, WebhookCheckStatus};

/// What one webhook POST's events came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WebhookCounts {
    /// Stored: delivery events and messages the tools can now answer from.
    pub recorded: usize,
    /// Already received (the upstream retried).
    pub(crate) duplicates: usize,
    /// Lacking what the server needs to use them (logged and counted); a retry would not help.
    pub(crate) unusable: usize,
    /// Of types the server does not read.
    pub(crate) ignored: usize,
}

/// One delivery event as an agent reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryEvent {
    pub(crate) event_id: String,
    pub(crate) kind: DeliveryKind,
    /// When the upstream created the event (when the server received it, if the event did not
    /// say).
    pub(crate) created_at: String,
    /// The channel type the message went to (`web`, `messenger`, `whatsapp`, ...), or
    /// `unknown` when the event did not say.
    pub(crate) channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) integration_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
    pub(crate) is_final_event: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<DeliveryFailureReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct DeliveryFailureReason {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// A failed delivery, as `list_delivery_failures` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryFailure {
    pub(crate) message_id: String,
    /// Absent when the event did not name the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
    pub(crate) channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) integration_id: Option<String>,
    pub(crate) code: String,
    pub(crate) reason: String,
    pub(crate) created_at: String,
    pub(crate) event_id: String,
    /// What to do about it, for its channel, code and reason (never stored: read from the one
    /// table in [`crate::sunco::remediation`] each time).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub(crate) next_step: Option<crate::sunco::remediation::NextStep>,
}

/// What the tracker knows about one message.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub message_id: String,
    /// The first conversation id an event named, if any did.
    pub(crate) conversation_id: Option<String>,
    pub(crate) events: Vec<DeliveryEvent>,
}

/// A message this server has seen, with its conversation: the message as the API showed it
/// (a webhook's `messageWebhook` may leave out fields a listed `message` has).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeenMessage {
    pub(crate) conversation_id: String,
    pub(crate) message: Value,
}

/// The events of one webhook POST, as read.
pub(crate) type ReadEvents = Arc<[Result<Inbound, Unusable>]>;

pub enum TrackerMsg {
    /// Events from one webhook POST, with the span of the request that brought them; the reply
    /// comes once they are stored.
    Record {
        events: ReadEvents,
        span: tracing::Span,
        reply: oneshot::Sender<Result<WebhookCounts, CallError>>,
    },
}

pub(crate) struct DeliveryTracker;

pub(crate) struct TrackerState {
    metrics: Arc<Metrics>,
    store: Arc<dyn DeliveryStore>,
    index: Arc<dyn ConversationIndex>,
    claims: Arc<dyn ClaimStore>,
}

/// What an event tells the conversation index, if anything: for a message, who wrote and
/// through which channel; for the lifecycle and control events, what changed; and for every event
/// whose payload shows the conversation, who controls it. Dated by the event's `createdAt`, else
/// by its arrival.
fn index_notes(event: &Inbound) -> Vec<ConversationNote> {
    let at = unix_ms(
        event
            .created_at
            .as_deref()
            .and_then(parse_timestamp)
            .unwrap_or_else(OffsetDateTime::now_utc),
    );
    let (conversation_id, change, control) = match &event.reading {
        Reading::Message(m) => (
            &m.conversation_id,
            Change::Message {
                from_user: m.from_user,
                channel: m.channel.clone(),
            },
            &m.control,
        ),
        Reading::Conversation(c) => (
            &c.conversation_id,
            match &c.change {
                ConversationChange::Created => Change::Created,
                ConversationChange::Removed => Change::Removed,
                ConversationChange::Activity => Change::Activity,
                ConversationChange::Control { active, pending } => Change::Control {
                    active: active.clone(),
                    pending: pending.clone(),
                },
            },
            &c.control,
        ),
        Reading::Delivery(_) | Reading::Ignored => return vec![],
    };
    let note = |change| ConversationNote {
        conversation_id: conversation_id.clone(),
        at,
        change,
    };
    let mut notes = vec![note(change)];
    if let Some((active, pending)) = control {
        notes.push(note(Change::Control {
            active: active.clone(),
            pending: pending.clone(),
        }));
    }
    notes
}

/// What an event tells the work queue: a user message to answer, a business message that
/// answers (or was sent under a claim, whose fence its metadata carries), the control moving,
/// the conversation removed: read from the event's index `notes`, dated as they are.
fn work_notes(event: &Inbound, notes: &[ConversationNote]) -> Vec<WorkNote> {
    notes
        .iter()
        .filter_map(|n| {
            let change = match n.change.clone() {
                Change::Message {
                    from_user: true,
                    channel,
                } => {
                    let Reading::Message(m) = &event.reading else {
                        return None;
                    };
                    WorkChange::UserMessage {
                        message_id: m.message_id.clone(),
                        channel,
                    }
                }
                Change::Message {
                    from_user: false, ..
                } => {
                    let Reading::Message(m) = &event.reading else {
                        return None;
                    };
                    WorkChange::BusinessMessage {
                        fence: m.message["metadata"][CLAIM_FIELD]
                            .as_str()
                            .and_then(|f| f.parse().ok()),
                    }
                }
                Change::Control { active, .. } => WorkChange::Control { active },
                Change::Removed => WorkChange::Removed,
                _ => return None,
            };
            Some(WorkNote {
                conversation_id: n.conversation_id.clone(),
                at: n.at,
                change,
            })
        })
        .collect()
}

impl TrackerState {
    fn new(args: TrackerArgs) -> Self {
        Self {
            metrics: args.metrics,
            store: args.store,
            index: args.index,
            claims: args.claims,
        }
    }

    /// Stores one POST's events: each is recorded once (repeats of a retried delivery are
    /// duplicates), and one the server cannot use is counted and logged once, never dropped
    /// silently. An error: the store took none of them (nothing is marked seen, so the
    /// upstream's retry is recorded).
    async fn record_all(
        &mut self,
        events: &[Result<Inbound, Unusable>],
    ) -> Result<WebhookCounts, StoreError> {
        // The index first: merging a note twice changes nothing, so should the record below
        // fail, the upstream's retry merges it again harmlessly; the other way round a retry
        // would be a duplicate and its note lost.
        // The work queue likewise, from the same notes: it knows a message delivered again.
        let (mut notes, mut work) = (Vec::new(), Vec::new());
        for event in events.iter().filter_map(|e| e.as_ref().ok()) {
            let of_event = index_notes(event);
            work.extend(work_notes(event, &of_event));
            notes.extend(of_event);
        }
        if !notes.is_empty() {
            self.index.apply(notes).await?;
        }
        if !work.is_empty() {
            self.claims.note(work).await?;
        }
        // Everything with an id but an ignored type goes to the store in one batch.
        let mut batch = Vec::new();
        for event in events {
            match event {
                Ok(e) if e.reading == Reading::Ignored => {}
                Ok(e) => batch.push(EventRecord {
                    event_id: e.id.clone(),
                    keep: match &e.reading {
                        Reading::Delivery(report) => Keep::Delivery(delivery_entry(e, report)),
                        Reading::Message(m) => Keep::Seen(SeenEntry {
                            message_id: m.message_id.clone(),
                            conversation_id: m.conversation_id.clone(),
                            message: m.message.to_string(),
                        }),
                        Reading::Conversation(_) | Reading::Ignored => Keep::Nothing,
                    },
                }),
                Err(u) => {
                    if let Some(id) = &u.id {
                        batch.push(EventRecord {
                            event_id: id.clone(),
                            keep: Keep::Nothing,
                        });
                    }
                }
            }
        }
        let mut firsts = self.store.record(batch).await?.into_iter();
        let mut counts = WebhookCounts::default();
        let mut arrived = false;
        for event in events {
            let (kind, outcome) = match event {
                Ok(e) if e.reading == Reading::Ignored => {
                    tracing::debug!(event_type = %e.kind, event_id = %e.id, "ignored a webhook event of a type the server does not read");
                    (e.kind.as_str(), Outcome::Ignored)
                }
                Ok(e) if firsts.next() != Some(true) => (e.kind.as_str(), Outcome::Duplicate),
                Ok(e) => {
                    if let Reading::Delivery(report) = &e.reading {
                        self.count_delivery(report);
                    }
                    (e.kind.as_str(), Outcome::Recorded)
                }
                Err(u) if u.id.is_some() && firsts.next() != Some(true) => {
                    (u.kind.as_str(), Outcome::Duplicate)
                }
                Err(u) => {
                    tracing::warn!(
                        event_type = %u.kind,
                        event_id = u.id.as_deref().unwrap_or("none"),
                        missing = u.missing,
                        "a webhook event cannot be used: it lacks {}",
                        u.missing
                    );
                    (u.kind.as_str(), Outcome::Unusable)
                }
            };
            // Events of the types the server reads show that its webhook delivers.
            arrived |= event_type::READ_BY_SERVER.contains(&kind);
            match outcome {
                Outcome::Recorded => counts.recorded += 1,
                Outcome::Duplicate => counts.duplicates += 1,
                Outcome::Unusable => counts.unusable += 1,
                Outcome::Ignored => counts.ignored += 1,
            }
            self.metrics.webhook_events.add(
                1,
                &[
                    kv("type", metric_type(kind)),
                    kv("outcome", outcome.as_str()),
                ],
            );
        }
        if arrived && let Err(e) = self.store.note_event(now_unix_ms()).await {
            tracing::debug!("cannot note when the last event arrived: {e}");
        }
        Ok(counts)
    }

    /// The delivery metric of a recorded event.
    fn count_delivery(&self, report: &DeliveryReport) {
        let mut attrs = vec![
            kv("type", report.kind.as_str()),
            kv("channel", label(&report.channel)),
        ];
        if let Some((code, _)) = &report.error {
            attrs.push(kv("code", label(code)));
        }
        self.metrics.delivery_events.add(1, &attrs);
    }
}

/// The record of one delivery event, and of its failure.
fn delivery_entry(event: &Inbound, report: &DeliveryReport) -> DeliveryEntry {
    let kind = report.kind;
    let error = report
        .error
        .as_ref()
        .map(|(code, message)| DeliveryFailureReason {
            code: code.clone(),
            message: message.clone(),
        });
    // An event that does not say when it was created is dated when it arrived.
    let created_at = event
        .created_at
        .clone()
        .unwrap_or_else(|| format_timestamp(OffsetDateTime::now_utc()));
    let view = DeliveryEvent {
        event_id: event.id.clone(),
        kind,
        created_at: created_at.clone(),
        channel: report.channel.clone(),
        integration_id: report.integration_id.clone(),
        user_id: report.user_id.clone(),
        is_final_event: report.is_final_event,
        error: error.clone(),
    };
    let failure = error.map(|error| DeliveryFailure {
        message_id: report.message_id.clone(),
        conversation_id: report.conversation_id.clone(),
        user_id: report.user_id.clone(),
        channel: report.channel.clone(),
        integration_id: report.integration_id.clone(),
        code: error.code,
        reason: error.message,
        created_at,
        event_id: event.id.clone(),
        next_step: None,
    });
    DeliveryEntry {
        message_id: report.message_id.clone(),
        conversation_id: report.conversation_id.clone(),
        // Our own views serialize without fail.
        event: serde_json::to_value(&view).unwrap_or_default(),
        failure: failure.map(|f| serde_json::to_value(&f).unwrap_or_default()),
    }
}

/// What became of one webhook event (the `outcome` attribute of the event counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Recorded,
    Duplicate,
    Unusable,
    Ignored,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Recorded => "recorded",
            Outcome::Duplicate => "duplicate",
            Outcome::Unusable => "unusable",
            Outcome::Ignored => "ignored",
        }
    }
}

/// A channel type or error code from a payload as a metric attribute: kept when it looks like
/// one (a short lowercase name), else `other`, so a sender cannot grow the series without bound
/// by sending odd values.
fn label(value: &str) -> String {
    let plain = (1..=40).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_:-".contains(c));
    if plain {
        value.to_owned()
    } else {
        "other".to_owned()
    }
}

/// The `type` attribute of the event counter: one of the spec's event types, else `other`
/// (the type comes from the request body, and attributes must stay a short list).
fn metric_type(kind: &str) -> String {
    if event_type::TRIGGERS.contains(&kind) && kind != "*" {
        kind.to_owned()
    } else {
        "other".to_owned()
    }
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
            TrackerMsg::Record {
                events,
                span: webhook,
                reply,
            } => {
                let span = tracing::info_span!(
                    parent: &webhook,
                    "delivery.record",
                    otel.name = "delivery record",
                    events = events.len() as i64
                );
                let stored = tracing::Instrument::instrument(state.record_all(&events), span)
                    .await
                    .map_err(|e| CallError::Unavailable {
                        component: "the delivery record",
                        reason: e.to_string(),
                    });
                let _ = reply.send(stored);
            }
        }
        Ok(())
    }
}

/// How the rest of the server feeds and reads the tracker.
#[derive(Clone)]
pub struct TrackerHandle {
    pub slot: Arc<Slot<TrackerMsg>>,
    pub watch: Arc<Watch>,
    /// The record, read directly: reads need no actor, and they outlive its restarts.
    pub store: Arc<dyn DeliveryStore>,
    /// The conversation index, read the same way.
    pub index: Arc<dyn ConversationIndex>,
}

impl TrackerHandle {
    fn until() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    /// Stores one webhook POST's events and says what they came to. An error means they were
    /// not stored (no tracker answered in time): the webhook route then answers 503 so the
    /// upstream retries.
    pub(crate) async fn record(&self, events: ReadEvents) -> Result<WebhookCounts, CallError> {
        let span = tracing::Span::current();
        let counts = ask(&self.slot, Self::until(), |reply| TrackerMsg::Record {
            events: events.clone(),
            span: span.clone(),
            reply,
        })
        .await??;
        self.watch.saw_event();
        Ok(counts)
    }

    /// What the delivery answers can be trusted for. When the record cannot say when the last
    /// event came, the status says `waiting`, never `on`.
    pub async fn tracking(&self) -> Tracking {
        match self.store.last_event().await {
            Ok(last) => self.watch.tracking(last.and_then(from_unix_ms)),
            Err(e) => {
                // Not "nothing arrived": what this replica received itself, said as such.
                tracing::debug!("cannot read when the last event arrived: {e}");
                let mut t = self.watch.tracking(self.watch.last_seen_here());
                t.message = format!(
                    "The shared delivery record cannot be read right now (the shared store is unavailable), so this is what this replica received itself. {}",
                    t.message
                );
                t
            }
        }
    }

    /// Records the outcome of a webhook check.
    pub(crate) fn set_webhook_check(&self, check: WebhookCheck) {
        self.watch.set_check(check);
    }

    /// Remembers a message the server sent or found, for `get_message`.
    pub(crate) async fn remember(&self, conversation_id: &str, message: &Message) {
        let entry = SeenEntry {
            message_id: message.id.clone(),
            conversation_id: conversation_id.to_owned(),
            message: serde_json::to_string(message).unwrap_or_default(),
        };
        if let Err(e) = self.store.remember(vec![entry]).await {
            // Only a shortcut is lost: get_message scans instead.
            tracing::debug!("cannot remember a message: {e}");
        }
    }

    /// The conversations the webhooks told of, newest activity first, at most `limit`; and the
    /// index's reach ([`TrackerHandle::index_reach`]).
    pub(crate) async fn recent_conversations(
        &self,
        limit: usize,
    ) -> Result<(Vec<crate::shared::ConversationEntry>, Option<i64>), CallError> {
        let recent = self.index.recent(limit).await.map_err(index_unavailable)?;
        Ok((recent, self.index_reach().await?))
    }

    /// The time since which the index holds every conversation the webhooks told of (Unix ms;
    /// see [`crate::shared::ConversationIndex::reach`]).
    pub(crate) async fn index_reach(&self) -> Result<Option<i64>, CallError> {
        self.index.reach().await.map_err(index_unavailable)
    }

    /// Notes in the index what this server learnt itself of a conversation (a control state
    /// the API showed, `Change::ControlSeen`; a control change it made, `Change::Control`), so
    /// the send guard need not wait for the webhook that brings the same news. Best effort.
    pub(crate) async fn note(&self, note: crate::shared::ConversationNote) {
        if let Err(e) = self.index.apply(vec![note]).await {
            tracing::warn!("cannot note a conversation's control state in the index: {e}");
        }
    }

    /// What the webhooks have told of a conversation, if anything.
    pub async fn conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<crate::shared::ConversationEntry>, CallError> {
        self.index
            .get(conversation_id)
            .await
            .map_err(index_unavailable)
    }

    pub async fn status(&self, message_id: &str) -> Result<Option<DeliveryRecord>, CallError> {
        let Some(found) = self.store.events(message_id).await.map_err(unavailable)? else {
            return Ok(None);
        };
        Ok(Some(DeliveryRecord {
            message_id: message_id.to_owned(),
            conversation_id: found.conversation_id,
            events: found
                .events
                .into_iter()
                .filter_map(|e| serde_json::from_value(e).ok())
                .collect(),
        }))
    }

    pub(crate) async fn failures(
        &self,
        conversation_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveryFailure>, CallError> {
        let list = self
            .store
            .failures(conversation_id, limit)
            .await
            .map_err(unavailable)?;
        Ok(list
            .into_iter()
            .filter_map(|f| serde_json::from_value(f).ok())
            .collect())
    }

    pub(crate) async fn seen(&self, message_id: &str) -> Result<Option<SeenMessage>, CallError> {
        let found = self.store.seen(message_id).await.map_err(unavailable)?;
        Ok(found.and_then(|s| {
            Some(SeenMessage {
                conversation_id: s.conversation_id,
                message: serde_json::from_str(&s.message).ok()?,
            })
        }))
    }
}

fn index_unavailable(e: StoreError) -> CallError {
    CallError::Unavailable {
        component: "the conversation index",
        reason: e.to_string(),
    }
}

fn unavailable(e: StoreError) -> CallError {
    CallError::Unavailable {
        component: "the delivery record",
        reason: e.to_string(),
    }
}
