//! Errors and pagination.

use serde::{Deserialize, Serialize};

/// `errorResponse`: `{errors:[{code,title}]}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct ErrorBody {
    pub(crate) errors: Vec<ApiErrorItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct ApiErrorItem {
    pub(crate) code: String,
    pub(crate) title: String,
}

impl ErrorBody {}

/// `meta` of a paginated list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meta {
    pub(crate) has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) after_cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) before_cursor: Option<String>,
}

/// `links` of a paginated list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct Links {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<String>,
}
