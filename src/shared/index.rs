//! Conversation index.

use super::*;

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
