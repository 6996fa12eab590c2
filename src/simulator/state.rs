//! The simulator's in-memory world: apps, keys, users, conversations with their participants and
//! messages, integrations with their webhooks, and the switchboard.
//!
//! Records live in `BTreeMap`s keyed by id. Ids sort in creation order, so "records after X" is a
//! range query, which is exactly what the API's cursor pagination means.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::secret::Secret;
use crate::sunco::auth::Scope;
use crate::sunco::ids::{IdGenerator, now_timestamp};
use crate::sunco::wire::{
    ClientAssociation, Conversation, Integration, Message, Participant, Switchboard,
    SwitchboardIntegration, User, Webhook,
};

/// An API key the simulator accepts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Key {
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) secret: Secret,
    pub(crate) scope: Scope,
    /// The app an app or integration key belongs to; `None` for account keys.
    pub(crate) app_id: Option<String>,
    /// The custom integration an integration key belongs to.
    pub(crate) integration_id: Option<String>,
}

/// A channel client of a user (the `client` schema, reduced to what delivery needs).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Client {
    pub(crate) id: String,
    /// `clientType` (`sdk`, `messenger`, `whatsapp`, ...).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The channel a message is delivered to: `web`, `ios`, `android`, `messenger`, `whatsapp`...
    pub(crate) platform: String,
    pub(crate) integration_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct UserRecord {
    pub(crate) user: User,
    pub(crate) clients: Vec<Client>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConversationRecord {
    pub(crate) conversation: Conversation,
    pub(crate) participants: Vec<Participant>,
    /// Messages by id, oldest first.
    #[serde(skip)]
    pub(crate) messages: BTreeMap<String, Message>,
    /// The business shows the user it is typing (`typing:start`, until `typing:stop` or its
    /// next message).
    #[serde(skip)]
    pub(crate) business_typing: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct App {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) users: BTreeMap<String, UserRecord>,
    pub(crate) conversations: BTreeMap<String, ConversationRecord>,
    pub(crate) integrations: BTreeMap<String, Integration>,
    /// Webhooks by custom integration id.
    pub(crate) webhooks: BTreeMap<String, Vec<Webhook>>,
    pub(crate) switchboard: Option<Switchboard>,
    pub(crate) switchboard_integrations: BTreeMap<String, SwitchboardIntegration>,
}

impl App {
    pub(crate) fn new(id: String, display_name: impl Into<String>) -> Self {
        Self {
            id,
            display_name: display_name.into(),
            users: BTreeMap::new(),
            conversations: BTreeMap::new(),
            integrations: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            switchboard: None,
            switchboard_integrations: BTreeMap::new(),
        }
    }

    /// The user whose externalId is `external_id`.
    pub(crate) fn user_by_external_id(&self, external_id: &str) -> Option<&UserRecord> {
        self.users
            .values()
            .find(|r| r.user.external_id.as_deref() == Some(external_id))
    }

    /// Resolves `userIdOrExternalId`: the id first, then the externalId.
    pub(crate) fn find_user_id(&self, id_or_external: &str) -> Option<String> {
        if self.users.contains_key(id_or_external) {
            return Some(id_or_external.to_owned());
        }
        self.user_by_external_id(id_or_external)
            .map(|r| r.user.id.clone())
    }

    /// The user's default conversation, if any.
    pub(crate) fn default_conversation_of(&self, user_id: &str) -> Option<&ConversationRecord> {
        self.conversations.values().find(|c| {
            c.conversation.is_default && c.participants.iter().any(|p| p.user_id == user_id)
        })
    }

    pub(crate) fn switchboard_integration_ref(
        &self,
        id: &str,
    ) -> Option<crate::sunco::wire::SwitchboardIntegrationRef> {
        self.switchboard_integrations
            .get(id)
            .map(SwitchboardIntegration::as_ref_on_conversation)
    }

    /// Adds a participant record for `user_id` to a conversation, with the user's clients as
    /// client associations (most recent first, as the API orders them).
    pub(crate) fn participant_for(&self, ids: &IdGenerator, user_id: &str) -> Option<Participant> {
        let rec = self.users.get(user_id)?;
        Some(Participant {
            id: ids.next(),
            user_id: user_id.to_owned(),
            user_external_id: rec.user.external_id.clone(),
            unread_count: 0,
            client_associations: rec
                .clients
                .iter()
                .map(|c| ClientAssociation {
                    kind: c.kind.clone(),
                    client_id: c.id.clone(),
                })
                .collect(),
            last_read: None,
        })
    }

    /// A new conversation record in the API's initial state: the switchboard's default
    /// integration is active when the switchboard is enabled.
    pub(crate) fn new_conversation(
        &self,
        id: String,
        kind: crate::sunco::wire::ConversationType,
    ) -> Conversation {
        let now = now_timestamp();
        let active = self
            .switchboard
            .as_ref()
            .filter(|s| s.enabled)
            .and_then(|s| s.default_switchboard_integration_id.as_deref())
            .and_then(|id| self.switchboard_integration_ref(id));
        Conversation {
            id,
            kind,
            metadata: None,
            active_switchboard_integration: active,
            pending_switchboard_integration: None,
            is_default: false,
            display_name: None,
            description: None,
            icon_url: None,
            business_last_read: None,
            last_updated_at: Some(now.clone()),
            created_at: Some(now),
        }
    }
}

/// Everything the simulator stores.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) ids: IdGenerator,
    pub(crate) keys: BTreeMap<String, Key>,
    pub(crate) apps: BTreeMap<String, App>,
}

impl World {
    pub(crate) fn new() -> Self {
        Self {
            ids: IdGenerator::new(),
            keys: BTreeMap::new(),
            apps: BTreeMap::new(),
        }
    }

    /// A JSON picture of the stored state for the admin route (without secrets or message bodies
    /// beyond counts).
    pub(crate) fn snapshot(&self) -> Value {
        let mut apps = Map::new();
        for (id, app) in &self.apps {
            let conversations: Vec<Value> = app
                .conversations
                .values()
                .map(|c| {
                    serde_json::json!({
                        "conversation": c.conversation,
                        "participants": c.participants,
                        "messageCount": c.messages.len(),
                        "businessTyping": c.business_typing,
                    })
                })
                .collect();
            apps.insert(
                id.clone(),
                serde_json::json!({
                    "displayName": app.display_name,
                    "users": app.users.values().collect::<Vec<_>>(),
                    "conversations": conversations,
                    "integrations": app.integrations.values().collect::<Vec<_>>(),
                    "switchboard": app.switchboard,
                    "switchboardIntegrations": app.switchboard_integrations.values().collect::<Vec<_>>(),
                }),
            );
        }
        serde_json::json!({
            "keys": self.keys.values().collect::<Vec<_>>(),
            "apps": apps,
        })
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}
