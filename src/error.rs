//! What can go wrong with a call, in terms an agent can act on.
//!
//! Actors reply with `Result<T, CallError>`; the MCP layer turns a `CallError` into a tool result
//! with `isError: true` whose text says what happened and what to do next. An actor returns `Err`
//! from its own handler only when its state is broken and it must be restarted; that is never a
//! `CallError`.

use std::time::Duration;

use serde_json::{Value, json};

/// A switchboard integration a caller may name as a control target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetInfo {
    pub id: String,
    pub name: String,
    pub integration_type: String,
}

/// The class of an error: what an agent or a client branches on, the `error` field of every
/// error body (tool results, `/webhooks/sunco`, `/healthz`, the token check on `/mcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// An argument or a request is wrong; nothing was done.
    InvalidArgument,
    /// An id names nothing there is (a conversation, user, message, integration…): `field`
    /// says which argument; nothing was done.
    NotFound,
    /// An idempotency key was reused for a different message; nothing was sent.
    IdempotencyConflict,
    /// The upstream answered with an error status.
    UpstreamError,
    /// Too many requests; retry after `retryAfterSeconds`.
    RateLimited,
    /// The server is at capacity; retry after `retryAfterSeconds`.
    Busy,
    /// The call's deadline passed.
    DeadlineExceeded,
    /// A write may or may not have happened.
    OutcomeUnknown,
    /// The upstream could not be reached.
    Unreachable,
    /// Credentials or a token were refused.
    Unauthorized,
    /// The caller may not do this (a tool outside its profile, a foreign `Host` or `Origin`).
    Forbidden,
    /// A control target that does not resolve.
    InvalidTarget,
    /// A part of the server is unavailable, or a feature is not configured.
    Unavailable,
    /// Another switchboard integration controls the conversation; nothing was sent.
    NotInControl,
    /// Who controls the conversation cannot be told now; nothing was sent. Retryable.
    ControlUnknown,
    /// A dry run stopped before the write (a result, never shown as an error).
    DryRun,
    /// The client cancelled the call or went away; nothing more was sent for it.
    Cancelled,
    /// User messages arrived after those the caller answered; nothing was sent.
    Superseded,
    /// The caller's claim on the conversation ended (lapsed, taken, completed); nothing was
    /// sent.
    ClaimLost,
    /// The server got something wrong.
    Internal,
}

impl ErrorClass {
    const ALL: [ErrorClass; 20] = [
        ErrorClass::InvalidArgument,
        ErrorClass::NotFound,
        ErrorClass::IdempotencyConflict,
        ErrorClass::UpstreamError,
        ErrorClass::RateLimited,
        ErrorClass::Busy,
        ErrorClass::DeadlineExceeded,
        ErrorClass::OutcomeUnknown,
        ErrorClass::Unreachable,
        ErrorClass::Unauthorized,
        ErrorClass::Forbidden,
        ErrorClass::InvalidTarget,
        ErrorClass::Unavailable,
        ErrorClass::NotInControl,
        ErrorClass::ControlUnknown,
        ErrorClass::DryRun,
        ErrorClass::Cancelled,
        ErrorClass::Superseded,
        ErrorClass::ClaimLost,
        ErrorClass::Internal,
    ];

    /// The class an error body's `error` field names.
    pub(crate) fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorClass::InvalidArgument => "invalid_argument",
            ErrorClass::NotFound => "not_found",
            ErrorClass::IdempotencyConflict => "idempotency_conflict",
            ErrorClass::UpstreamError => "upstream_error",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Busy => "busy",
            ErrorClass::DeadlineExceeded => "deadline_exceeded",
            ErrorClass::OutcomeUnknown => "outcome_unknown",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Unauthorized => "unauthorized",
            ErrorClass::Forbidden => "forbidden",
            ErrorClass::InvalidTarget => "invalid_target",
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::NotInControl => "not_in_control",
            ErrorClass::ControlUnknown => "control_unknown",
            ErrorClass::DryRun => "dry_run",
            ErrorClass::Cancelled => "cancelled",
            ErrorClass::Superseded => "superseded",
            ErrorClass::ClaimLost => "claim_lost",
            ErrorClass::Internal => "internal",
        }
    }

    /// The error body of an HTTP route: `{"error": class, "message": message}`.
    pub(crate) fn body(self, message: impl Into<String>) -> Value {
        json!({"error": self.as_str(), "message": message.into()})
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The caller's profile does not include the tool; nothing was done.
    #[error(
        "the tool {tool} is not available to this caller (profile {profile}); list the tools to see which are"
    )]
    Forbidden { tool: String, profile: String },

    /// An argument is wrong; nothing was sent upstream.
    #[error("invalid argument {field}: {reason}")]
    InvalidArgument { field: String, reason: String },

    /// The id in `field` names nothing this server or the upstream knows.
    #[error("not found: {field}: {reason}")]
    NotFound { field: String, reason: String },

    /// An idempotency key was reused for a different message: nothing was sent.
    #[error(
        "idempotencyKey {key} was first used for a different message in this conversation; nothing was sent. Use a new key for a new message, or repeat the first message exactly"
    )]
    IdempotencyConflict { key: String },

    /// The upstream answered with an error status.
    #[error("Sunshine Conversations answered {status} {code} to {operation}: {title}")]
    Upstream {
        operation: &'static str,
        status: u16,
        code: String,
        title: String,
    },

    /// The upstream kept answering 429 and the call's deadline leaves no room to wait.
    #[error(
        "rate limited by Sunshine Conversations ({operation}); retry after {} s",
        whole_secs(*retry_after)
    )]
    RateLimited {
        operation: &'static str,
        retry_after: Duration,
    },

    /// The dispatcher's queue is full.
    #[error(
        "the server is busy: {queued} upstream calls are queued; retry after {} s",
        whole_secs(*retry_after)
    )]
    Busy {
        queued: usize,
        retry_after: Duration,
    },

    /// Another call (on another replica, or on one that stopped mid-send and whose hold has not
    /// lapsed yet) is sending with the same idempotency key.
    #[error(
        "another call is sending with idempotencyKey {key}; nothing was sent by this call. Retry after {} s with the same key: you will get that call's result, or the server checks the conversation before sending",
        whole_secs(*retry_after)
    )]
    KeyHeld { key: String, retry_after: Duration },

    /// The call's deadline passed before an answer came.
    #[error(
        "{operation} did not complete within its {} s deadline ({why}); retry after {} s",
        whole_secs(*deadline),
        whole_secs(*retry_after)
    )]
    Deadline {
        operation: &'static str,
        deadline: Duration,
        why: String,
        retry_after: Duration,
    },

    /// A write failed in a way that leaves open whether the upstream stored it. It was not retried.
    #[error(
        "the outcome of {operation} is unknown: {reason}. The upstream may have stored it; check before repeating it (for a message, list the conversation's newest messages)"
    )]
    OutcomeUnknown {
        operation: &'static str,
        reason: String,
    },

    /// The upstream could not be reached (after retries where retrying was safe).
    #[error("cannot reach Sunshine Conversations for {operation}: {reason}")]
    Unreachable {
        operation: &'static str,
        reason: String,
    },

    /// The credentials were refused even after a fresh token.
    #[error(
        "Sunshine Conversations refused the credentials ({operation}): {reason}. Check SUNCO_KEY_ID and SUNCO_KEY_SECRET"
    )]
    Unauthorized {
        operation: &'static str,
        reason: String,
    },

    /// A control target that does not resolve to exactly one switchboard integration.
    #[error("{reason}; valid targets: {}", list_targets(valid))]
    InvalidTarget {
        reason: String,
        valid: Vec<TargetInfo>,
    },

    /// An internal component is restarting or stopped.
    #[error("{component} is unavailable ({reason}); retry in a moment")]
    Unavailable {
        component: &'static str,
        reason: String,
    },

    /// Something the server itself got wrong (an answer it could not read).
    #[error("internal error: {0}")]
    Internal(String),

    /// The server cannot start as configured: what to fix (no retry mends it).
    #[error("{0}")]
    Misconfigured(String),

    /// The send guard: a business message into a conversation another switchboard integration
    /// controls (a human agent, say). Nothing was sent.
    #[error(
        "{} controls conversation {conversation_id}, not {caller}; nothing was sent. Do not answer over it: wait until control comes back (get_switchboard_status), or pass overrideControl: true if your token allows it and a person asked for it",
        active.as_ref().map_or_else(|| "no switchboard integration".to_owned(), |a| format!("the switchboard integration {} (type {}, id {})", a.name, a.integration_type, a.id))
    )]
    NotInControl {
        conversation_id: String,
        caller: String,
        active: Option<TargetInfo>,
    },

    /// The send guard cannot tell who controls the conversation; nothing was sent.
    #[error(
        "cannot tell who controls conversation {conversation_id} ({reason}); nothing was sent. Retry in a moment"
    )]
    ControlUnknown {
        conversation_id: String,
        reason: String,
    },

    /// A dry run reached the write: the request it would have sent. Not an error to the caller:
    /// the tool answers with `dryRun: true` and this request.
    #[error("dry run: {} {} was not sent", request.method, request.path)]
    DryRun {
        request: Box<crate::sunco::endpoints::PlannedRequest>,
    },

    /// The client cancelled the call (`notifications/cancelled`) or went away before
    /// `operation` was sent; it was not sent.
    #[error("the call was cancelled before {operation} was sent; nothing was sent")]
    Cancelled { operation: &'static str },

    /// A send under a claim (or `inReplyTo`) after user messages arrived that the caller had
    /// not been shown: nothing was sent; the messages go along so it can answer the whole.
    #[error(
        "{} user message(s) arrived in conversation {conversation_id} after the ones you answered; nothing was sent. Read them (arrived) and send one answer to the whole{}",
        arrived.len(),
        if *claimed { "; your claim still holds" } else { "" }
    )]
    Superseded {
        conversation_id: String,
        arrived: Vec<Value>,
        /// Whether the send was under a claim (which still holds).
        claimed: bool,
    },

    /// A send, renewal or release under a claim that is no longer the caller's: nothing was
    /// sent. `reason`: `lapsed`, `taken` (lapsed and claimed by another), `answered`,
    /// `skipped`, `handed_over`, `removed`, `released`.
    #[error(
        "your claim on conversation {conversation_id} has ended ({reason}){}; nothing was sent or changed. Call claim_conversation for new work",
        match reason.as_str() {
            "lapsed" => ": its lease ran out before you renewed it",
            "taken" => ": its lease ran out and another agent claimed the conversation",
            "handed_over" => ": control of the conversation passed to another switchboard integration",
            "removed" => ": the conversation was deleted",
            "answered" | "skipped" | "released" => ": it was completed",
            _ => "",
        }
    )]
    ClaimLost {
        conversation_id: String,
        reason: String,
    },
}

fn whole_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

fn list_targets(valid: &[TargetInfo]) -> String {
    if valid.is_empty() {
        return "none (the switchboard has no integrations)".to_owned();
    }
    let mut s = valid
        .iter()
        .map(|t| {
            format!(
                "{} (name, type {}, id {})",
                t.name, t.integration_type, t.id
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    s.push_str(", or \"next\"");
    s
}

/// The argument an upstream `…_not_found` code is about (`conversation_not_found`:
/// `conversationId`); `None` for a code that names no argument.
fn not_found_field(code: &str) -> Option<&'static str> {
    Some(match code {
        "conversation_not_found" => "conversationId",
        "user_not_found" => "userId",
        "message_not_found" => "messageId",
        "integration_not_found" => "integrationId",
        "switchboard_not_found" => "switchboardId",
        "switchboard_integration_not_found" => "switchboardIntegrationId",
        "webhook_not_found" => "webhookId",
        _ => return None,
    })
}

impl CallError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CallError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The error's class: what an agent branches on, and the `outcome` of the call metrics.
    pub fn class(&self) -> ErrorClass {
        match self {
            CallError::Forbidden { .. } => ErrorClass::Forbidden,
            CallError::InvalidArgument { .. } => ErrorClass::InvalidArgument,
            CallError::IdempotencyConflict { .. } => ErrorClass::IdempotencyConflict,
            CallError::NotFound { .. } | CallError::Upstream { status: 404, .. } => {
                ErrorClass::NotFound
            }
            CallError::Upstream { .. } => ErrorClass::UpstreamError,
            CallError::RateLimited { .. } => ErrorClass::RateLimited,
            CallError::Busy { .. } | CallError::KeyHeld { .. } => ErrorClass::Busy,
            CallError::Deadline { .. } => ErrorClass::DeadlineExceeded,
            CallError::OutcomeUnknown { .. } => ErrorClass::OutcomeUnknown,
            CallError::Unreachable { .. } => ErrorClass::Unreachable,
            CallError::Unauthorized { .. } => ErrorClass::Unauthorized,
            CallError::InvalidTarget { .. } => ErrorClass::InvalidTarget,
            CallError::Unavailable { .. } => ErrorClass::Unavailable,
            CallError::Internal(_) => ErrorClass::Internal,
            CallError::Misconfigured(_) => ErrorClass::Unavailable,
            CallError::NotInControl { .. } => ErrorClass::NotInControl,
            CallError::ControlUnknown { .. } => ErrorClass::ControlUnknown,
            CallError::DryRun { .. } => ErrorClass::DryRun,
            CallError::Cancelled { .. } => ErrorClass::Cancelled,
            CallError::Superseded { .. } => ErrorClass::Superseded,
            CallError::ClaimLost { .. } => ErrorClass::ClaimLost,
        }
    }

    /// When a retry may succeed, how long to wait first.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::RateLimited { retry_after, .. }
            | CallError::Busy { retry_after, .. }
            | CallError::KeyHeld { retry_after, .. }
            | CallError::Deadline { retry_after, .. } => Some(*retry_after),
            CallError::Unavailable { .. } | CallError::Unreachable { .. } => {
                Some(Duration::from_secs(1))
            }
            CallError::ControlUnknown { .. } => Some(Duration::from_secs(2)),
            _ => None,
        }
    }

    /// The upstream's HTTP status, when the upstream answered.
    pub(crate) fn upstream_status(&self) -> Option<u16> {
        match self {
            CallError::Upstream { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The JSON an agent reads: the message plus the facts it can branch on.
    pub fn to_json(&self) -> Value {
        let mut v = self.class().body(self.to_string());
        if let Some(d) = self.retry_after() {
            v["retryAfterSeconds"] = json!(whole_secs(d));
        }
        match self {
            CallError::Upstream { status, code, .. } => {
                v["status"] = json!(status);
                v["code"] = json!(code);
                if let Some(field) = (*status == 404).then(|| not_found_field(code)).flatten() {
                    v["field"] = json!(field);
                }
            }
            CallError::NotFound { field, .. } => {
                v["field"] = json!(field);
            }
            CallError::InvalidTarget { valid, .. } => {
                v["validTargets"] = json!(valid);
            }
            CallError::InvalidArgument { field, .. } => {
                v["field"] = json!(field);
            }
            CallError::NotInControl {
                conversation_id,
                active,
                ..
            } => {
                v["conversationId"] = json!(conversation_id);
                v["activeSwitchboardIntegration"] = json!(active);
            }
            CallError::DryRun { request } => {
                v["request"] = json!(request);
            }
            CallError::IdempotencyConflict { key } => {
                v["field"] = json!("idempotencyKey");
                v["idempotencyKey"] = json!(key);
            }
            CallError::Superseded {
                conversation_id,
                arrived,
                ..
            } => {
                v["conversationId"] = json!(conversation_id);
                v["arrived"] = json!(arrived);
            }
            CallError::ClaimLost {
                conversation_id,
                reason,
            } => {
                v["conversationId"] = json!(conversation_id);
                v["reason"] = json!(reason);
            }
            _ => {}
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_reads_back_from_its_name() {
        for class in ErrorClass::ALL {
            assert_eq!(ErrorClass::from_wire(class.as_str()), Some(class));
        }
        assert_eq!(ErrorClass::from_wire("no_such_class"), None);
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = CallError::RateLimited {
            operation: "PostMessage",
            retry_after: Duration::from_millis(2100),
        };
        assert_eq!(
            e.to_string(),
            "rate limited by Sunshine Conversations (PostMessage); retry after 3 s"
        );
        assert_eq!(e.to_json()["retryAfterSeconds"], 3);
        let t = CallError::InvalidTarget {
            reason: "no switchboard integration is named \"humans\"".into(),
            valid: vec![TargetInfo {
                id: "a".into(),
                name: "bot".into(),
                integration_type: "custom".into(),
            }],
        };
        assert!(t.to_string().contains("bot (name, type custom, id a)"));
        assert_eq!(t.to_json()["validTargets"][0]["name"], "bot");
    }
}
