//! Users.

use serde::{Deserialize, Serialize};

use super::Metadata;

/// `profile`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Profile {
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) given_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) surname: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
    /// Avatar image URL (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) avatar_url: Option<String>,
    /// Locale, e.g. `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) locale: Option<String>,
}

/// `identity`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct Identity {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) value: String,
    pub(crate) verification: String,
}

/// `user`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct User {
    pub(crate) id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) zendesk_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) brand_id: Option<String>,
    pub(crate) authenticated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) signed_up_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) to_be_retained: Option<bool>,
    #[serde(default)]
    pub(crate) profile: Profile,
    #[serde(default)]
    pub(crate) metadata: Metadata,
    #[serde(default)]
    pub(crate) identities: Vec<Identity>,
}

/// `userCreateBody`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) brand_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) signed_up_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) to_be_retained: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) profile: Option<Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Metadata>,
}

/// `userUpdateBody`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_up_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) to_be_retained: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) profile: Option<Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Metadata>,
}
