//! Errors and pagination.

use serde::{Deserialize, Serialize};

/// `errorResponse`: `{errors:[{code,title}]}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ErrorBody {
    pub errors: Vec<ApiErrorItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ApiErrorItem {
    pub code: String,
    pub title: String,
}

impl ErrorBody {
    pub fn one(code: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            errors: vec![ApiErrorItem {
                code: code.into(),
                title: title.into(),
            }],
        }
    }
}

/// `meta` of a paginated list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_cursor: Option<String>,
}

/// `links` of a paginated list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Links {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}
