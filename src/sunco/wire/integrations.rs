//! Integrations and webhooks.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `webhook` (of a custom integration).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub version: String,
    pub target: String,
    pub triggers: Vec<String>,
    /// The shared secret sent in `X-API-Key`. Readable in webhook responses, as the API shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default)]
    pub include_full_user: bool,
    #[serde(default)]
    pub include_full_source: bool,
}

/// `integration`: the common fields, with the type-specific ones kept as they came.
///
/// Channel configurations hold secrets (page access tokens, API keys); this type keeps them in
/// `extra` exactly as the API returns them, and anything shown to an agent must filter them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
