//! Conversation index.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{BoxFuture, StoreError};
use crate::sunco::ids::now_unix_ms;

/// What the index knows of one conversation, from the webhooks. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConversationEntry {
    pub conversation_id: String,
    /// The active switchboard integration's id, when known.
    pub active_switchboard_integration: Option<String>,
    /// The pending switchboard integration's id, when known.
    pub(crate) pending_switchboard_integration: Option<String>,
    /// When the conversation was created, when a `conversation:create` said so.
    pub(crate) created_at: Option<i64>,
    /// The last activity heard of; entries are listed newest first by it.
    pub(crate) last_activity_at: i64,
    /// The channel of the last user message, when known.
    pub(crate) last_user_channel: Option<String>,
    /// Whether the last message came from the user.
    pub(crate) awaiting_reply: bool,
    /// When the message that set `awaiting_reply` was sent (an older one arriving late changes
    /// nothing).
    pub(crate) last_message_at: i64,
    /// When the control state was last set, likewise.
    pub(crate) control_at: i64,
}

/// What one webhook event says about a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationNote {
    pub conversation_id: String,
    /// When it happened (the event's `createdAt`, Unix milliseconds).
    pub(crate) at: i64,
    pub(crate) change: Change,
}

/// The change a [`ConversationNote`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// `conversation:create`.
    Created,
    /// `conversation:remove`: forgotten; notes about it from before the removal are ignored.
    Removed,
    /// `conversation:message`: whether the user wrote it, and the channel it came through.
    Message {
        from_user: bool,
        channel: Option<String>,
    },
    /// The control state an event names (`switchboard:*`): the active and pending switchboard
    /// integrations' ids, `None` for none.
    Control {
        active: Option<String>,
        pending: Option<String>,
    },
    /// Anything else about it (`conversation:join`, `conversation:leave`): activity only.
    Activity,
    /// The control state as the API showed it when asked (`GetConversation`, dated when the
    /// request was sent): it updates a conversation the index already knows, and is neither
    /// activity nor a reason to start knowing one, since the index learns from events.
    ControlSeen {
        active: Option<String>,
        pending: Option<String>,
    },
}

impl Change {
    /// Whether the note tells of activity (every kind but [`Change::ControlSeen`]).
    pub(crate) fn is_activity(&self) -> bool {
        !matches!(self, Change::ControlSeen { .. })
    }
}

/// The conversations the server has heard of, bounded in count and age.
///
/// Invariants: notes merge into what the index knows (a conversation first heard of is
/// created); the last activity is the latest note's time; `awaiting_reply`, the channel and the
/// control state follow the latest note of their kind, so notes arriving out of order change
/// nothing that newer ones set; a control state read from the API updates only a conversation
/// already known, without counting as activity; a removal forgets a conversation and ignores notes from before
/// it; `recent` lists newest activity first, at most `limit`; past its count the index forgets
/// the least recently active first, and it forgets what has been quiet longer than its age;
/// `reach` is the time since which it holds every conversation it heard of: the time of the
/// first note it took (or when it took it, if that is earlier), moved forward past the activity of what its count bound made it forget and to its
/// age bound (`None` before it has heard of any).
pub trait ConversationIndex: Send + Sync + std::fmt::Debug {
    fn apply(&self, notes: Vec<ConversationNote>) -> BoxFuture<'_, Result<(), StoreError>>;
    fn get<'a>(
        &'a self,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConversationEntry>, StoreError>>;
    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ConversationEntry>, StoreError>>;
    fn reach(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>>;
}

/// Merges `change` (made at `at`) into `entry`: the one rule for every implementation's
/// in-process half (the Redis script applies the same).
pub(crate) fn merge(entry: &mut ConversationEntry, at: i64, change: &Change) {
    if change.is_activity() {
        entry.last_activity_at = entry.last_activity_at.max(at);
    }
    match change {
        Change::Created => {
            entry.created_at = Some(entry.created_at.map_or(at, |c| c.min(at)));
        }
        Change::Message { from_user, channel } if at >= entry.last_message_at => {
            entry.last_message_at = at;
            entry.awaiting_reply = *from_user;
            if *from_user && channel.is_some() {
                entry.last_user_channel.clone_from(channel);
            }
        }
        Change::Control { active, pending } | Change::ControlSeen { active, pending }
            if at >= entry.control_at =>
        {
            entry.control_at = at;
            entry.active_switchboard_integration.clone_from(active);
            entry.pending_switchboard_integration.clone_from(pending);
        }
        _ => {}
    }
}

/// [`ConversationIndex`] in this process's memory: `capacity` conversations at most, each
/// forgotten after `max_age` without activity.
#[derive(Debug)]
pub(crate) struct MemoryConversationIndex {
    capacity: usize,
    max_age: Duration,
    inner: Mutex<IndexInner>,
}

#[derive(Debug, Default)]
struct IndexInner {
    entries: HashMap<String, ConversationEntry>,
    /// Removed conversations and when, kept as long as entries are.
    removed: HashMap<String, i64>,
    /// See [`ConversationIndex::reach`].
    since: Option<i64>,
}

impl MemoryConversationIndex {
    pub(crate) fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            max_age,
            inner: Mutex::new(IndexInner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, IndexInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl IndexInner {
    fn trim(&mut self, capacity: usize, oldest: i64) {
        self.entries.retain(|_, e| e.last_activity_at >= oldest);
        self.since = self.since.map(|s| s.max(oldest));
        self.removed.retain(|_, at| *at >= oldest);
        while self.removed.len() > capacity {
            let Some(id) = self
                .removed
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            self.removed.remove(&id);
        }
        while self.entries.len() > capacity {
            let Some((id, at)) = self
                .entries
                .values()
                .min_by_key(|e| e.last_activity_at)
                .map(|e| (e.conversation_id.clone(), e.last_activity_at))
            else {
                break;
            };
            self.entries.remove(&id);
            self.since = self.since.map(|s| s.max(at));
        }
    }
}

impl ConversationIndex for MemoryConversationIndex {
    fn apply(&self, notes: Vec<ConversationNote>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut inner = self.inner();
            // It hears from the first note's time (or now, for a note dated later).
            let first = notes.iter().map(|n| n.at).min();
            inner
                .since
                .get_or_insert_with(|| first.unwrap_or(i64::MAX).min(now_unix_ms()));
            for note in notes {
                if inner
                    .removed
                    .get(&note.conversation_id)
                    .is_some_and(|removed| note.at <= *removed)
                {
                    continue;
                }
                if note.change == Change::Removed {
                    inner.entries.remove(&note.conversation_id);
                    inner.removed.insert(note.conversation_id, note.at);
                    continue;
                }
                if !note.change.is_activity() {
                    if let Some(entry) = inner.entries.get_mut(&note.conversation_id) {
                        merge(entry, note.at, &note.change);
                    }
                    continue;
                }
                let entry = inner
                    .entries
                    .entry(note.conversation_id.clone())
                    .or_insert_with(|| ConversationEntry {
                        conversation_id: note.conversation_id.clone(),
                        last_activity_at: note.at,
                        last_message_at: i64::MIN,
                        control_at: i64::MIN,
                        ..ConversationEntry::default()
                    });
                merge(entry, note.at, &note.change);
            }
            let oldest = now_unix_ms() - self.max_age.as_millis() as i64;
            inner.trim(self.capacity, oldest);
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConversationEntry>, StoreError>> {
        Box::pin(async move { Ok(self.inner().entries.get(conversation_id).cloned()) })
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ConversationEntry>, StoreError>> {
        Box::pin(async move {
            let mut all: Vec<ConversationEntry> = self.inner().entries.values().cloned().collect();
            all.sort_by(|a, b| {
                b.last_activity_at
                    .cmp(&a.last_activity_at)
                    .then_with(|| a.conversation_id.cmp(&b.conversation_id))
            });
            all.truncate(limit);
            Ok(all)
        })
    }

    fn reach(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move { Ok(self.inner().since) })
    }
}
