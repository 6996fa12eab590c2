//! Response envelopes (what the API answers, as our client reads it).

use serde::Deserialize;

use crate::sunco::wire::{
    Conversation, Integration, Message, Meta, Switchboard, SwitchboardIntegration, User, Webhook,
};

/// `conversationListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ConversationListResponse {
    pub(crate) conversations: Vec<Conversation>,
    #[serde(default)]
    pub(crate) meta: Meta,
}

/// `conversationResponse`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ConversationResponse {
    pub(crate) conversation: Conversation,
}

/// `messageListResponse`, and `messagePostResponse` (`meta` absent).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MessageListResponse {
    pub(crate) messages: Vec<Message>,
    #[serde(default)]
    pub(crate) meta: Meta,
}

/// `userResponse`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UserResponse {
    pub(crate) user: User,
}

/// `userListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UserListResponse {
    #[serde(default)]
    pub(crate) users: Vec<User>,
}

/// `integrationListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IntegrationListResponse {
    pub(crate) integrations: Vec<Integration>,
    #[serde(default)]
    pub(crate) meta: Meta,
}

/// `integrationResponse`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IntegrationResponse {
    pub(crate) integration: Integration,
}

/// `webhookListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WebhookListResponse {
    #[serde(default)]
    pub(crate) webhooks: Vec<Webhook>,
}

/// `switchboardListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SwitchboardListResponse {
    pub(crate) switchboards: Vec<Switchboard>,
}

/// `switchboardIntegrationListResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SwitchboardIntegrationListResponse {
    pub(crate) switchboard_integrations: Vec<SwitchboardIntegration>,
}
