//! One request type per endpoint this project calls, and how each becomes an HTTP request.
//!
//! [`Endpoint`] is the whole list. [`Endpoint::to_http`] is the only place that knows paths, and
//! every id taken from a caller goes through [`super::path::segment`] there.

use reqwest::Method;
use serde_json::Value;

use super::paging::{Page, filter_pair};
use super::path::segment;
use super::wire::{
    ActivityPost, ControlBody, ControlTargetBody, ConversationCreate, ConversationUpdate,
    MessagePost, UserCreate, UserUpdate,
};

/// How a request may be retried after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryClass {
    /// Reads: always safe to repeat.
    Read,
    /// Writes whose repetition leaves the same state (PATCH of fields, DELETE).
    Idempotent,
    /// Writes that create something (messages, users, conversations) or hand over control:
    /// repeat only when the first attempt provably never reached the upstream.
    NonIdempotent,
}

/// Who a user-addressed call names: the API accepts the id or the externalId in one slot.
pub(crate) type UserIdOrExternalId = String;

/// Filter for ListConversations: exactly one of the two is required by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationFilter {
    UserId(String),
    UserExternalId(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    ListConversations {
        filter: ConversationFilter,
        page: Page,
    },
    CreateConversation(ConversationCreate),
    UpdateConversation {
        conversation_id: String,
        body: ConversationUpdate,
    },
    GetConversation {
        conversation_id: String,
    },
    ListMessages {
        conversation_id: String,
        page: Page,
    },
    PostMessage {
        conversation_id: String,
        body: Box<MessagePost>,
    },
    PostActivity {
        conversation_id: String,
        body: ActivityPost,
    },
    CreateUser(UserCreate),
    GetUser {
        user: UserIdOrExternalId,
    },
    UpdateUser {
        user: UserIdOrExternalId,
        body: UserUpdate,
    },
    ListUsersByEmail {
        email: String,
    },
    ListSwitchboards,
    ListSwitchboardIntegrations {
        switchboard_id: String,
    },
    PassControl {
        conversation_id: String,
        body: ControlTargetBody,
    },
    OfferControl {
        conversation_id: String,
        body: ControlTargetBody,
    },
    AcceptControl {
        conversation_id: String,
        body: ControlBody,
    },
    ReleaseControl {
        conversation_id: String,
        body: ControlBody,
    },
    ListIntegrations {
        types: Vec<String>,
        page: Page,
    },
    GetIntegration {
        integration_id: String,
    },
    ListWebhooks {
        integration_id: String,
    },
}

/// A request ready for an HTTP client: everything but the base URL and the credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// The spec's operationId, for logs, spans and metrics.
    pub operation: &'static str,
    pub(crate) method: Method,
    /// Starts with `/v2/apps/`; appended to the configured base URL.
    pub path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
    pub(crate) retry: RetryClass,
}

/// A write a dry run stopped before sending: exactly what would have gone upstream, without
/// the base URL and the credentials.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRequest {
    /// The spec's operationId, e.g. `PostMessage`.
    pub operation: String,
    /// `POST`, `PUT`, `PATCH` or `DELETE`.
    pub(crate) method: String,
    /// The path under the API's base URL, e.g. `/v2/apps/{appId}/conversations/{id}/messages`
    /// with the ids filled in.
    pub(crate) path: String,
    /// The JSON body, when the request has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::sunco::wire::json_object")]
    pub(crate) body: Option<Value>,
}

impl From<&HttpRequest> for PlannedRequest {
    fn from(r: &HttpRequest) -> Self {
        Self {
            operation: r.operation.to_owned(),
            method: r.method.to_string(),
            path: r.path.clone(),
            body: r.body.clone(),
        }
    }
}

impl HttpRequest {
    /// The path with every id replaced by the spec's parameter name
    /// (`/v2/apps/{appId}/conversations/{conversationId}/messages`): what spans and logs carry,
    /// since an id in a path may be a person's externalId.
    pub fn template(&self) -> String {
        let mut out = String::with_capacity(self.path.len());
        let mut param: Option<&str> = None;
        for segment in self.path.split('/').skip(1) {
            out.push('/');
            match param.take() {
                Some(name) => out.push_str(name),
                None => out.push_str(segment),
            }
            param = match segment {
                "apps" => Some("{appId}"),
                "conversations" => Some("{conversationId}"),
                "messages" => Some("{messageId}"),
                "users" => Some("{userIdOrExternalId}"),
                "switchboards" => Some("{switchboardId}"),
                "switchboardIntegrations" => Some("{switchboardIntegrationId}"),
                "integrations" => Some("{integrationId}"),
                "webhooks" => Some("{webhookId}"),
                _ => None,
            };
        }
        out
    }
}

impl Endpoint {
    /// The spec's operationId.
    pub(crate) fn operation(&self) -> &'static str {
        match self {
            Endpoint::ListConversations { .. } => "ListConversations",
            Endpoint::CreateConversation(_) => "CreateConversation",
            Endpoint::UpdateConversation { .. } => "UpdateConversation",
            Endpoint::GetConversation { .. } => "GetConversation",
            Endpoint::ListMessages { .. } => "ListMessages",
            Endpoint::PostMessage { .. } => "PostMessage",
            Endpoint::PostActivity { .. } => "PostActivity",
            Endpoint::CreateUser(_) => "CreateUser",
            Endpoint::GetUser { .. } => "GetUser",
            Endpoint::UpdateUser { .. } => "UpdateUser",
            Endpoint::ListUsersByEmail { .. } => "ListUsers",
            Endpoint::ListSwitchboards => "ListSwitchboards",
            Endpoint::ListSwitchboardIntegrations { .. } => "ListSwitchboardIntegrations",
            Endpoint::PassControl { .. } => "PassControl",
            Endpoint::OfferControl { .. } => "OfferControl",
            Endpoint::AcceptControl { .. } => "AcceptControl",
            Endpoint::ReleaseControl { .. } => "ReleaseControl",
            Endpoint::ListIntegrations { .. } => "ListIntegrations",
            Endpoint::GetIntegration { .. } => "GetIntegration",
            Endpoint::ListWebhooks { .. } => "ListWebhooks",
        }
    }

    /// Builds the HTTP request for app `app_id`. A flat `match` table: one arm per endpoint
    /// (method, path, query, body, retry class), as the spec lists them.
    pub fn to_http(&self, app_id: &str) -> HttpRequest {
        let app = format!("/v2/apps/{}", segment(app_id));
        let conv = |id: &str| format!("{app}/conversations/{}", segment(id));
        let json = |v: &dyn erased::ToJson| Some(v.to_json());
        let (method, path, query, body, retry) = match self {
            Endpoint::ListConversations { filter, page } => {
                let mut q = vec![match filter {
                    ConversationFilter::UserId(id) => filter_pair("userId", id),
                    ConversationFilter::UserExternalId(id) => filter_pair("userExternalId", id),
                }];
                q.extend(page.query_pairs());
                (
                    Method::GET,
                    format!("{app}/conversations"),
                    q,
                    None,
                    RetryClass::Read,
                )
            }
            Endpoint::CreateConversation(body) => (
                Method::POST,
                format!("{app}/conversations"),
                vec![],
                json(body),
                RetryClass::NonIdempotent,
            ),
            Endpoint::UpdateConversation {
                conversation_id,
                body,
            } => (
                Method::PATCH,
                conv(conversation_id),
                vec![],
                json(body),
                RetryClass::Idempotent,
            ),
            Endpoint::GetConversation { conversation_id } => (
                Method::GET,
                conv(conversation_id),
                vec![],
                None,
                RetryClass::Read,
            ),
            Endpoint::ListMessages {
                conversation_id,
                page,
            } => (
                Method::GET,
                format!("{}/messages", conv(conversation_id)),
                // The API ignores page[size] here; sending it would only mislead a reader.
                Page {
                    cursor: page.cursor.clone(),
                    size: None,
                }
                .query_pairs(),
                None,
                RetryClass::Read,
            ),
            Endpoint::PostMessage {
                conversation_id,
                body,
            } => (
                Method::POST,
                format!("{}/messages", conv(conversation_id)),
                vec![],
                json(body),
                RetryClass::NonIdempotent,
            ),
            // Typing twice, or marking read twice, leaves the same state.
            Endpoint::PostActivity {
                conversation_id,
                body,
            } => (
                Method::POST,
                format!("{}/activity", conv(conversation_id)),
                vec![],
                json(body),
                RetryClass::Idempotent,
            ),
            Endpoint::CreateUser(body) => (
                Method::POST,
                format!("{app}/users"),
                vec![],
                json(body),
                RetryClass::NonIdempotent,
            ),
            Endpoint::GetUser { user } => (
                Method::GET,
                format!("{app}/users/{}", segment(user)),
                vec![],
                None,
                RetryClass::Read,
            ),
            Endpoint::UpdateUser { user, body } => (
                Method::PATCH,
                format!("{app}/users/{}", segment(user)),
                vec![],
                json(body),
                RetryClass::Idempotent,
            ),
            Endpoint::ListUsersByEmail { email } => (
                Method::GET,
                format!("{app}/users"),
                vec![filter_pair("identities.email", email)],
                None,
                RetryClass::Read,
            ),
            Endpoint::ListSwitchboards => (
                Method::GET,
                format!("{app}/switchboards"),
                vec![],
                None,
                RetryClass::Read,
            ),
            Endpoint::ListSwitchboardIntegrations { switchboard_id } => (
                Method::GET,
                format!(
                    "{app}/switchboards/{}/switchboardIntegrations",
                    segment(switchboard_id)
                ),
                vec![],
                None,
                RetryClass::Read,
            ),
            Endpoint::PassControl {
                conversation_id,
                body,
            } => control(conv(conversation_id), "passControl", json(body)),
            Endpoint::OfferControl {
                conversation_id,
                body,
            } => control(conv(conversation_id), "offerControl", json(body)),
            Endpoint::AcceptControl {
                conversation_id,
                body,
            } => control(conv(conversation_id), "acceptControl", json(body)),
            Endpoint::ReleaseControl {
                conversation_id,
                body,
            } => control(conv(conversation_id), "releaseControl", json(body)),
            Endpoint::ListIntegrations { types, page } => {
                let mut q = Vec::new();
                if !types.is_empty() {
                    q.push(filter_pair("types", types.join(",")));
                }
                q.extend(page.query_pairs());
                (
                    Method::GET,
                    format!("{app}/integrations"),
                    q,
                    None,
                    RetryClass::Read,
                )
            }
            Endpoint::GetIntegration { integration_id } => (
                Method::GET,
                format!("{app}/integrations/{}", segment(integration_id)),
                vec![],
                None,
                RetryClass::Read,
            ),
            Endpoint::ListWebhooks { integration_id } => (
                Method::GET,
                format!("{app}/integrations/{}/webhooks", segment(integration_id)),
                vec![],
                None,
                RetryClass::Read,
            ),
        };
        HttpRequest {
            operation: self.operation(),
            method,
            path,
            query,
            body,
            retry,
        }
    }
}

fn control(
    conversation_path: String,
    action: &str,
    body: Option<Value>,
) -> (
    Method,
    String,
    Vec<(String, String)>,
    Option<Value>,
    RetryClass,
) {
    (
        Method::POST,
        format!("{conversation_path}/{action}"),
        vec![],
        body,
        RetryClass::NonIdempotent,
    )
}

/// Serialisation of the body types without naming each one; every body type is plain data, so
/// turning it into JSON cannot fail.
mod erased {
    use serde::Serialize;
    use serde_json::Value;

    pub(crate) trait ToJson {
        fn to_json(&self) -> Value;
    }

    impl<T: Serialize> ToJson for T {
        fn to_json(&self) -> Value {
            serde_json::to_value(self).unwrap_or(Value::Null)
        }
    }
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn templates_hide_every_id() {
        let e = Endpoint::PostMessage {
            conversation_id: "c0ffee".into(),
            body: Box::new(MessagePost {
                author: crate::sunco::wire::Author::business(),
                content: crate::sunco::wire::Content::text("x"),
                destination: None,
                metadata: None,
                schema: None,
                r#override: None,
            }),
        };
        assert_eq!(
            e.to_http("app1").template(),
            "/v2/apps/{appId}/conversations/{conversationId}/messages"
        );
        let u = Endpoint::GetUser {
            user: "ada@example.org".into(),
        };
        assert_eq!(
            u.to_http("app1").template(),
            "/v2/apps/{appId}/users/{userIdOrExternalId}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sunco::wire::{Author, Content};

    #[test]
    fn hostile_ids_cannot_leave_their_segment() {
        let r = Endpoint::GetConversation {
            conversation_id: "../users/x".into(),
        }
        .to_http("app/../1");
        assert_eq!(
            r.path,
            "/v2/apps/app%2F%2E%2E%2F1/conversations/%2E%2E%2Fusers%2Fx"
        );
    }

    #[test]
    fn list_conversations_requires_a_filter_and_pages() {
        let r = Endpoint::ListConversations {
            filter: ConversationFilter::UserExternalId("demo-user-01".into()),
            page: Page::default().with_size(10),
        }
        .to_http("a1");
        assert_eq!(r.method, Method::GET);
        assert_eq!(r.path, "/v2/apps/a1/conversations");
        assert_eq!(
            r.query,
            vec![
                ("filter[userExternalId]".into(), "demo-user-01".into()),
                ("page[size]".into(), "10".into())
            ]
        );
    }

    #[test]
    fn sends_are_not_idempotent() {
        let r = Endpoint::PostMessage {
            conversation_id: "c".into(),
            body: Box::new(MessagePost {
                author: Author::business(),
                content: Content::text("hi"),
                destination: None,
                metadata: None,
                schema: None,
                r#override: None,
            }),
        }
        .to_http("a");
        assert_eq!(r.retry, RetryClass::NonIdempotent);
        assert_eq!(
            r.body.unwrap(),
            serde_json::json!({"author":{"type":"business"},"content":{"type":"text","text":"hi"}})
        );
        assert_eq!(
            Endpoint::ListSwitchboards.to_http("a").retry,
            RetryClass::Read
        );
    }
}
