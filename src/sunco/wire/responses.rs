//! Response envelopes (what the API answers, as our client reads it).

use serde::Deserialize;

use crate::sunco::wire::{
    Conversation, Integration, Message, Meta, Switchboard, SwitchboardIntegration, User, Webhook,
};

/// `conversationListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationListResponse {
    pub conversations: Vec<Conversation>,
    #[serde(default)]
    pub meta: Meta,
}

/// `conversationResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationResponse {
    pub conversation: Conversation,
}

/// `messageListResponse`, and `messagePostResponse` (`meta` absent).
#[derive(Debug, Clone, Deserialize)]
pub struct MessageListResponse {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub meta: Meta,
}

/// `userResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserResponse {
    pub user: User,
}

/// `userListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserListResponse {
    #[serde(default)]
    pub users: Vec<User>,
}

/// `integrationListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct IntegrationListResponse {
    pub integrations: Vec<Integration>,
    #[serde(default)]
    pub meta: Meta,
}

/// `integrationResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct IntegrationResponse {
    pub integration: Integration,
}

/// `webhookListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookListResponse {
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

/// `switchboardListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchboardListResponse {
    pub switchboards: Vec<Switchboard>,
}

/// `switchboardIntegrationListResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchboardIntegrationListResponse {
    pub switchboard_integrations: Vec<SwitchboardIntegration>,
}
