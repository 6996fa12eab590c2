//! Error answers in the API's shape: a status and `{errors:[{code,title}]}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::sunco::wire::{ApiErrorItem, ErrorBody};

#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) errors: Vec<ApiErrorItem>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, title: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![ApiErrorItem {
                code: code.to_owned(),
                title: title.into(),
            }],
        }
    }

    pub(crate) fn bad_request(title: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", title)
    }

    /// A 400 carrying one error per invalid field (only a 400 may carry several).
    pub(crate) fn invalid_fields(titles: Vec<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            errors: titles
                .into_iter()
                .map(|title| ApiErrorItem {
                    code: "bad_request".to_owned(),
                    title,
                })
                .collect(),
        }
    }

    pub(crate) fn unauthorized(title: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", title)
    }

    pub(crate) fn forbidden(title: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", title)
    }

    pub(crate) fn not_found(code: &str, title: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, title)
    }

    pub(crate) fn conflict(title: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", title)
    }

    pub(crate) fn app_not_found() -> Self {
        Self::not_found("app_not_found", "App not found")
    }
    pub(crate) fn user_not_found() -> Self {
        Self::not_found("user_not_found", "User not found")
    }
    pub(crate) fn conversation_not_found() -> Self {
        Self::not_found("conversation_not_found", "Conversation not found")
    }
    pub(crate) fn integration_not_found() -> Self {
        Self::not_found("integration_not_found", "Integration not found")
    }
    pub(crate) fn switchboard_not_found() -> Self {
        Self::not_found("switchboard_not_found", "Switchboard not found")
    }
    pub(crate) fn switchboard_integration_not_found() -> Self {
        Self::not_found(
            "switchboard_integration_not_found",
            "Switchboard integration not found",
        )
    }
    pub(crate) fn resource_not_found() -> Self {
        Self::not_found("not_found", "Resource not found")
    }

    pub(crate) fn body(&self) -> ErrorBody {
        ErrorBody {
            errors: self.errors.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
