//! Conversations and participants.

use serde::{Deserialize, Serialize};

use super::Metadata;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub enum ConversationType {
    #[serde(rename = "personal")]
    Personal,
    #[serde(rename = "sdkGroup")]
    SdkGroup,
}

/// `switchboardIntegrationWebhook`: the active or pending integration as the conversation shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SwitchboardIntegrationRef {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) integration_id: String,
    pub(crate) integration_type: String,
}

/// `conversation` (which is `conversationTruncated` plus the fields after `pending...`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Conversation {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: ConversationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) active_switchboard_integration: Option<SwitchboardIntegrationRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending_switchboard_integration: Option<SwitchboardIntegrationRef>,
    #[serde(default)]
    pub(crate) is_default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) icon_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) business_last_read: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created_at: Option<String>,
}

/// `conversationTruncated`, as webhook payloads carry it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConversationTruncated {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: ConversationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) active_switchboard_integration: Option<SwitchboardIntegrationRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending_switchboard_integration: Option<SwitchboardIntegrationRef>,
}

impl From<&Conversation> for ConversationTruncated {
    fn from(c: &Conversation) -> Self {
        Self {
            id: c.id.clone(),
            kind: c.kind,
            metadata: c.metadata.clone(),
            active_switchboard_integration: c.active_switchboard_integration.clone(),
            pending_switchboard_integration: c.pending_switchboard_integration.clone(),
        }
    }
}

/// One entry of `participants` in `conversationCreateBody`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_external_id: Option<String>,
    #[serde(
        default,
        rename = "subscribeSDKClient",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) subscribe_sdk_client: Option<bool>,
}

/// `conversationCreateBody`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationCreate {
    #[serde(rename = "type")]
    pub kind: ConversationType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<ParticipantRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) icon_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Metadata>,
}

/// `conversationUpdateBody`: the fields given are changed, the others kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) icon_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Metadata>,
}

/// `clientAssociation`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClientAssociation {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) client_id: String,
}

/// `participant`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Participant {
    pub(crate) id: String,
    pub(crate) user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_external_id: Option<String>,
    pub(crate) unread_count: u64,
    #[serde(default)]
    pub(crate) client_associations: Vec<ClientAssociation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_read: Option<String>,
}
