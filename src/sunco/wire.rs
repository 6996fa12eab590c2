//! Serde types for what travels on the wire, named after the spec's schemas.
//!
//! Field names are the API's (camelCase). Optional fields are omitted when absent, the way the
//! API's examples show them; a field the spec marks nullable and that we must be able to clear
//! is a `Option<Option<T>>` only where the API actually distinguishes "absent" from `null`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Flat `metadata`: string, number or boolean values, at most 4 KB.
pub type Metadata = Map<String, Value>;

/// The schema of a JSON object passed through as it is (`{"type": "object"}`).
pub fn json_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object"})
}

/// The schema of a list of JSON objects passed through as they are.
fn json_object_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "array", "items": {"type": "object"}})
}

// ---------------------------------------------------------------------------------------------
// Errors and pagination

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

// ---------------------------------------------------------------------------------------------
// Conversations and participants

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
pub struct SwitchboardIntegrationRef {
    pub id: String,
    pub name: String,
    pub integration_id: String,
    pub integration_type: String,
}

/// `conversation` (which is `conversationTruncated` plus the fields after `pending...`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ConversationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_switchboard_integration: Option<SwitchboardIntegrationRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_switchboard_integration: Option<SwitchboardIntegrationRef>,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_last_read: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// `conversationTruncated`, as webhook payloads carry it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationTruncated {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ConversationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_switchboard_integration: Option<SwitchboardIntegrationRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_switchboard_integration: Option<SwitchboardIntegrationRef>,
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
    pub user_external_id: Option<String>,
    #[serde(
        default,
        rename = "subscribeSDKClient",
        skip_serializing_if = "Option::is_none"
    )]
    pub subscribe_sdk_client: Option<bool>,
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
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `conversationUpdateBody`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `clientAssociation`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAssociation {
    #[serde(rename = "type")]
    pub kind: String,
    pub client_id: String,
}

/// `participant`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: String,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_external_id: Option<String>,
    pub unread_count: u64,
    #[serde(default)]
    pub client_associations: Vec<ClientAssociation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Messages

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthorType {
    Business,
    User,
}

/// `author`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Author {
    #[serde(rename = "type")]
    pub kind: AuthorType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtypes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Write-only: only in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_external_id: Option<String>,
    /// Write-only: only in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

impl Author {
    pub fn business() -> Self {
        Self {
            kind: AuthorType::Business,
            subtypes: Vec::new(),
            user_id: None,
            user_external_id: None,
            brand_id: None,
            display_name: None,
            avatar_url: None,
        }
    }
}

/// Message actions (`action`), discriminated by `type`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    Buy {
        text: String,
        amount: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        currency: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
    },
    #[serde(rename_all = "camelCase")]
    Link {
        uri: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "json_object")]
        extra_channel_options: Option<Value>,
    },
    LocationRequest {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
    },
    Postback {
        text: String,
        payload: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
    },
    #[serde(rename_all = "camelCase")]
    Reply {
        text: String,
        payload: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        icon_url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
    },
    #[serde(rename_all = "camelCase")]
    Webview {
        uri: String,
        text: String,
        fallback: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        open_on_receive: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "json_object")]
        extra_channel_options: Option<Value>,
    },
}

/// A carousel or list `item`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// A `form` field.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FormField {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<FormOption>>,
    // Answers, present on `formResponse` fields only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "json_object_list")]
    pub select: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct FormOption {
    pub label: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Coordinates {
    pub lat: f64,
    pub long: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct LocationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisplaySettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_aspect_ratio: Option<String>,
}

/// Message `content`, discriminated by `type`. Every type the API can send, plus the inbound-only
/// `formResponse`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Content {
    #[serde(rename_all = "camelCase")]
    Text {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        html_text: Option<String>,
        /// Write-only: the API converts it to `htmlText`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        markdown_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_chat_input: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actions: Option<Vec<Action>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Image {
        media_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_size: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alt_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        html_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        markdown_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_chat_input: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actions: Option<Vec<Action>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachment_id: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    File {
        media_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_size: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alt_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        html_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        markdown_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_chat_input: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachment_id: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Carousel {
        items: Vec<Item>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_settings: Option<DisplaySettings>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_chat_input: Option<bool>,
        /// Read-only fallback text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    List {
        items: Vec<Item>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actions: Option<Vec<Action>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_chat_input: Option<bool>,
    },
    #[serde(rename_all = "camelCase")]
    Location {
        coordinates: Coordinates,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<LocationInfo>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_chat_input: Option<bool>,
        /// Read-only fallback text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Form {
        fields: Vec<FormField>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_chat_input: Option<bool>,
        /// Read-only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        submitted: Option<bool>,
    },
    #[serde(rename_all = "camelCase")]
    FormResponse {
        fields: Vec<FormField>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text_fallback: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Template {
        template: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_chat_input: Option<bool>,
    },
}

impl Content {
    /// Plain text content.
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text {
            text: Some(text.into()),
            html_text: None,
            markdown_text: None,
            block_chat_input: None,
            actions: None,
            payload: None,
        }
    }

    /// The content types a business can send through the API (`formResponse` comes only from
    /// users).
    pub const SENDABLE: &[&str] = &[
        "text", "image", "file", "carousel", "list", "location", "form", "template",
    ];

    /// The discriminator, as the API spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Content::Text { .. } => "text",
            Content::Image { .. } => "image",
            Content::File { .. } => "file",
            Content::Carousel { .. } => "carousel",
            Content::List { .. } => "list",
            Content::Location { .. } => "location",
            Content::Form { .. } => "form",
            Content::FormResponse { .. } => "formResponse",
            Content::Template { .. } => "template",
        }
    }
}

/// `source`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_message_timestamp: Option<String>,
}

impl Source {
    /// The source of a message sent through the API (`api:conversations`), or, with an
    /// integration, of one that came in from that channel.
    pub fn of(kind: impl Into<String>, integration_id: Option<String>) -> Self {
        Self {
            kind: kind.into(),
            integration_id,
            original_message_id: None,
            original_message_timestamp: None,
        }
    }
}

/// `message`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub received: String,
    pub author: Author,
    pub content: Content,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "json_object")]
    pub quoted_message: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
}

/// `destination` of a posted message: by integration id or by integration type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_type: Option<String>,
}

/// `messagePost`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MessagePost {
    pub author: Author,
    pub content: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#override: Option<Value>,
}

// ---------------------------------------------------------------------------------------------
// Users

/// `profile`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Avatar image URL (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// Locale, e.g. `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// `identity`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Identity {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub verification: String,
}

/// `user`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zendesk_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_id: Option<String>,
    pub authenticated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_up_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_be_retained: Option<bool>,
    #[serde(default)]
    pub profile: Profile,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub identities: Vec<Identity>,
}

/// `userCreateBody`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_up_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_be_retained: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `userUpdateBody`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_up_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_be_retained: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

// ---------------------------------------------------------------------------------------------
// Switchboards

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
    pub fn as_ref_on_conversation(&self) -> SwitchboardIntegrationRef {
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

// ---------------------------------------------------------------------------------------------
// Integrations and webhooks

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

// ---------------------------------------------------------------------------------------------
// Response envelopes (what the API answers, as our client reads it)

/// `conversationListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationListResponse {
    pub conversations: Vec<Conversation>,
    #[serde(default)]
    pub meta: Meta,
}

/// `conversationResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationResponse {
    pub conversation: Conversation,
}

/// `messageListResponse`, and `messagePostResponse` (`meta` absent).
#[derive(Debug, Clone, Deserialize)]
pub struct MessageListResponse {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub meta: Meta,
}

/// `userResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserResponse {
    pub user: User,
}

/// `integrationListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct IntegrationListResponse {
    pub integrations: Vec<Integration>,
    #[serde(default)]
    pub meta: Meta,
}

/// `integrationResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct IntegrationResponse {
    pub integration: Integration,
}

/// `webhookListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookListResponse {
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

/// `switchboardListResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchboardListResponse {
    pub switchboards: Vec<Switchboard>,
}

/// `switchboardIntegrationListResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchboardIntegrationListResponse {
    pub switchboard_integrations: Vec<SwitchboardIntegration>,
}

// ---------------------------------------------------------------------------------------------
// Webhook envelopes (what the API POSTs to us)

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct WebhookEnvelope {
    pub app: AppRef,
    pub webhook: WebhookRef,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct AppRef {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct WebhookRef {
    pub id: String,
    pub version: String,
}

/// One event: `eventSubSchema` plus a payload whose shape depends on `type`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    #[serde(default)]
    pub payload: Value,
}

/// The event types this project emits or consumes.
pub mod event_type {
    pub const MESSAGE: &str = "conversation:message";
    pub const DELIVERY_CHANNEL: &str = "conversation:message:delivery:channel";
    pub const DELIVERY_USER: &str = "conversation:message:delivery:user";
    pub const DELIVERY_FAILURE: &str = "conversation:message:delivery:failure";
    pub const PASS_CONTROL: &str = "switchboard:passControl";
    pub const PASS_CONTROL_FAILURE: &str = "switchboard:passControl:failure";
    pub const OFFER_CONTROL: &str = "switchboard:offerControl";
    pub const OFFER_CONTROL_FAILURE: &str = "switchboard:offerControl:failure";
    pub const ACCEPT_CONTROL: &str = "switchboard:acceptControl";
    pub const ACCEPT_CONTROL_FAILURE: &str = "switchboard:acceptControl:failure";
    pub const RELEASE_CONTROL: &str = "switchboard:releaseControl";

    /// Every trigger a webhook may subscribe to (`webhookCreateBody.triggers`); `*` is all.
    pub const TRIGGERS: &[&str] = &[
        "*",
        "client:add",
        "client:remove",
        "client:update",
        "conversation:create",
        "conversation:join",
        "conversation:leave",
        "conversation:remove",
        "conversation:message",
        "conversation:message:delivery:channel",
        "conversation:message:delivery:user",
        "conversation:message:delivery:failure",
        "conversation:postback",
        "conversation:read",
        "conversation:referral",
        "conversation:typing",
        "passthrough:messaging",
        "switchboard:acceptControl",
        "switchboard:acceptControl:failure",
        "switchboard:offerControl",
        "switchboard:offerControl:failure",
        "switchboard:passControl",
        "switchboard:passControl:failure",
        "switchboard:releaseControl",
        "user:merge",
        "user:update",
        "user:remove",
    ];

    /// The triggers the server reads: the one list behind the webhook check, the README's
    /// webhook set-up and the simulator's subscription under `--simulator`.
    pub const READ_BY_SERVER: &[&str] =
        &[MESSAGE, DELIVERY_CHANNEL, DELIVERY_USER, DELIVERY_FAILURE];
}

/// `conversationMessageDeliveryPayload` (+ `error` on failures).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPayload {
    pub user: DeliveryUser,
    pub conversation: ConversationTruncated,
    pub message: MessageRef,
    pub destination: DeliveryDestination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_messages: Option<Vec<MessageRef>>,
    pub is_final_event: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeliveryError>,
}

/// The user as delivery events show it (`id`, `externalId`, `authenticated`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryUser {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub authenticated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct MessageRef {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDestination {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct DeliveryError {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_round_trips_with_its_discriminator() {
        let v = json!({"type":"carousel","items":[{"title":"Tacos","actions":[
            {"type":"postback","text":"Select","payload":"TACOS"},
            {"type":"link","text":"More","uri":"https://example.org"}]}]});
        let c: Content = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(c.type_name(), "carousel");
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
    }

    #[test]
    fn unknown_content_type_is_refused() {
        assert!(serde_json::from_value::<Content>(json!({"type":"hologram"})).is_err());
    }
}
