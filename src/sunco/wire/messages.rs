//! Messages.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Metadata, json_object, json_object_list};

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
    pub(crate) user_id: Option<String>,
    /// Write-only: only in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_external_id: Option<String>,
    /// Write-only: only in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) brand_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) avatar_url: Option<String>,
}

/// `activityPost`: a typing indicator or a read receipt (`PostActivity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityPost {
    pub author: Author,
    /// `typing:start`, `typing:stop` or `conversation:read` (`activityTypes.type`).
    #[serde(rename = "type")]
    pub kind: String,
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
    pub(crate) media_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) alt_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) size: Option<String>,
    pub(crate) actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Metadata>,
}

/// A `form` field.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FormField {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub(crate) label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) placeholder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) min_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) options: Option<Vec<FormOption>>,
    // Answers, present on `formResponse` fields only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "json_object_list")]
    pub(crate) select: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct FormOption {
    pub(crate) label: String,
    pub(crate) name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Coordinates {
    pub lat: f64,
    pub(crate) long: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct LocationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
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
    pub(crate) fn text(text: impl Into<String>) -> Self {
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
    pub(crate) const SENDABLE: &[&str] = &[
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
pub(crate) struct Source {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) integration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) original_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) original_message_timestamp: Option<String>,
}

impl Source {
    /// The source of a message sent through the API (`api:conversations`), or, with an
    /// integration, of one that came in from that channel.
    pub(crate) fn of(kind: impl Into<String>, integration_id: Option<String>) -> Self {
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
    pub(crate) received: String,
    pub(crate) author: Author,
    pub(crate) content: Content,
    pub(crate) source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "json_object")]
    pub(crate) quoted_message: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deleted: Option<bool>,
}

/// `destination` of a posted message: by integration id or by integration type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) integration_type: Option<String>,
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
