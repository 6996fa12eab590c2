//! Switchboards.

use serde::{Deserialize, Serialize};

use super::Metadata;
use crate::sunco::wire::SwitchboardIntegrationRef;

/// `switchboard`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Switchboard {
    pub id: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_switchboard_integration_id: Option<String>,
}

/// `switchboardIntegration`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwitchboardIntegration {
    pub id: String,
    pub name: String,
    pub integration_id: String,
    pub integration_type: String,
    pub deliver_standby_events: bool,
    #[serde(default)]
    pub next_switchboard_integration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_history_count: Option<u8>,
}

impl SwitchboardIntegration {
    /// The form a conversation shows for its active or pending integration.
    pub(crate) fn as_ref_on_conversation(&self) -> SwitchboardIntegrationRef {
        SwitchboardIntegrationRef {
            id: self.id.clone(),
            name: self.name.clone(),
            integration_id: self.integration_id.clone(),
            integration_type: self.integration_type.clone(),
        }
    }
}

/// Body of `passControl` and `offerControl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlTargetBody {
    pub switchboard_integration: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// Body of `acceptControl` and `releaseControl`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ControlBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}
