//! Webhook envelopes (what the API POSTs to us).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sunco::wire::ConversationTruncated;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct WebhookEnvelope {
    pub(crate) app: AppRef,
    pub(crate) webhook: WebhookRef,
    pub(crate) events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct AppRef {
    pub(crate) id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct WebhookRef {
    pub(crate) id: String,
    pub(crate) version: String,
}

/// One event: `eventSubSchema` plus a payload whose shape depends on `type`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) created_at: String,
    #[serde(default)]
    pub(crate) payload: Value,
}

/// The event types this project emits or consumes.
pub mod event_type {
    pub const CONVERSATION_CREATE: &str = "conversation:create";
    pub const CONVERSATION_REMOVE: &str = "conversation:remove";
    pub const CONVERSATION_JOIN: &str = "conversation:join";
    pub const CONVERSATION_LEAVE: &str = "conversation:leave";
    pub const MESSAGE: &str = "conversation:message";
    pub const DELIVERY_CHANNEL: &str = "conversation:message:delivery:channel";
    pub const DELIVERY_USER: &str = "conversation:message:delivery:user";
    pub const DELIVERY_FAILURE: &str = "conversation:message:delivery:failure";
    pub const PASS_CONTROL: &str = "switchboard:passControl";
    pub const PASS_CONTROL_FAILURE: &str = "switchboard:passControl:failure";
    pub(crate) const OFFER_CONTROL: &str = "switchboard:offerControl";
    pub(crate) const ACCEPT_CONTROL: &str = "switchboard:acceptControl";
    pub(crate) const RELEASE_CONTROL: &str = "switchboard:releaseControl";

    /// Every trigger a webhook may subscribe to (`webhookCreateBody.triggers`); `*` is all.
    pub(crate) const TRIGGERS: &[&str] = &[
        "*",
        "client:add",
        "client:remove",
        "client:update",
        "conversation:create",
        "conversation:join",
        "conversation:leave",
        "conversation:remove",
        "conversation:message",
        "conversation:message:delivery:channel",
        "conversation:message:delivery:user",
        "conversation:message:delivery:failure",
        "conversation:postback",
        "conversation:read",
        "conversation:referral",
        "conversation:typing",
        "passthrough:messaging",
        "switchboard:acceptControl",
        "switchboard:acceptControl:failure",
        "switchboard:offerControl",
        "switchboard:offerControl:failure",
        "switchboard:passControl",
        "switchboard:passControl:failure",
        "switchboard:releaseControl",
        "user:merge",
        "user:update",
        "user:remove",
    ];

    /// The triggers the server reads: the one list behind the webhook check, the README's
    /// webhook set-up and the simulator's subscription under `--simulator`.
    pub const READ_BY_SERVER: &[&str] = &[
        MESSAGE,
        DELIVERY_CHANNEL,
        DELIVERY_USER,
        DELIVERY_FAILURE,
        CONVERSATION_CREATE,
        CONVERSATION_REMOVE,
        CONVERSATION_JOIN,
        CONVERSATION_LEAVE,
        PASS_CONTROL,
        OFFER_CONTROL,
        ACCEPT_CONTROL,
        RELEASE_CONTROL,
    ];
}

/// `conversationMessageDeliveryPayload` (+ `error` on failures).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryPayload {
    pub(crate) user: DeliveryUser,
    pub(crate) conversation: ConversationTruncated,
    pub(crate) message: MessageRef,
    pub(crate) destination: DeliveryDestination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) external_messages: Option<Vec<MessageRef>>,
    pub(crate) is_final_event: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<DeliveryError>,
}

/// The user as delivery events show it (`id`, `externalId`, `authenticated`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryUser {
    pub(crate) id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) external_id: Option<String>,
    pub(crate) authenticated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct MessageRef {
    pub(crate) id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryDestination {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) integration_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct DeliveryError {
    pub(crate) code: String,
    pub(crate) message: String,
}
