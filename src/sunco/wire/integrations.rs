//! Integrations and webhooks.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `webhook` (of a custom integration).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Webhook {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) target: String,
    pub(crate) triggers: Vec<String>,
    /// The shared secret sent in `X-API-Key`. Readable in webhook responses, as the API shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<String>,
    #[serde(default)]
    pub(crate) include_full_user: bool,
    #[serde(default)]
    pub(crate) include_full_source: bool,
}

/// `integration`: the common fields, with the type-specific ones kept as they came.
///
/// Channel configurations hold secrets (page access tokens, API keys); this type keeps them in
/// `extra` exactly as the API returns them, and anything shown to an agent must filter them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Integration {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) display_name: Option<String>,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}
