//! Tool arguments and results. The `///` docs here become the schemas an LLM reads, so they are
//! written for it. Field names are the Sunshine Conversations API's (camelCase), so one vocabulary
//! runs from the tool to the API docs. Every argument object refuses unknown fields.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actors::delivery::{DeliveryEvent, DeliveryFailure, Tracking};
use crate::actors::switchboard::SwitchboardStatus;
use crate::error::CallError;
use crate::sunco::wire::{
    Author, AuthorType, Conversation, ConversationType, Destination, Message, Metadata, Profile,
    Switchboard, SwitchboardIntegration, User,
};

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListConversationsArgs {
    /// The user whose conversations to list: the Sunshine Conversations user id, or the
    /// externalId (the id is tried first). Give at most one of userId and userExternalId;
    /// give neither to list the conversations the server has heard of through webhooks.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The user whose conversations to list, by your system's externalId.
    #[serde(default)]
    pub user_external_id: Option<String>,
    /// Conversations per page, 1 to 100 (default 25).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// The nextCursor of the previous page; omit for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Only conversations this switchboard integration controls (its id, name or
    /// integrationType, e.g. `bot`).
    #[serde(default)]
    pub active_switchboard_integration: Option<String>,
    /// Only conversations offered to this switchboard integration (id, name or type).
    #[serde(default)]
    pub pending_switchboard_integration: Option<String>,
    /// Only conversations created after this time (ISO 8601).
    #[serde(default)]
    pub created_after: Option<String>,
    /// Only conversations created before this time (ISO 8601).
    #[serde(default)]
    pub created_before: Option<String>,
    /// Only conversations last active after this time (ISO 8601).
    #[serde(default)]
    pub updated_after: Option<String>,
    /// Only conversations last active before this time (ISO 8601).
    #[serde(default)]
    pub updated_before: Option<String>,
    /// Only conversations whose user last wrote through this channel type, e.g. `whatsapp`.
    #[serde(default)]
    pub channel: Option<String>,
    /// true: only conversations whose last message came from the user (waiting for a reply);
    /// false: only those the business answered last.
    #[serde(default)]
    pub awaiting_reply: Option<bool>,
}

/// A participant of a new conversation: the user by id or by externalId.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParticipantArg {
    /// The user's Sunshine Conversations id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The user's externalId.
    #[serde(default)]
    pub user_external_id: Option<String>,
    /// For sdkGroup conversations: whether the user's SDK clients are subscribed.
    #[serde(default, rename = "subscribeSDKClient")]
    pub subscribe_sdk_client: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateConversationArgs {
    /// `personal` (the default: exactly one participant) or `sdkGroup` (up to 10).
    #[serde(default, rename = "type")]
    pub kind: Option<ConversationType>,
    /// The users taking part. The users must exist already (create_user first).
    #[serde(default)]
    pub participants: Vec<ParticipantArg>,
    /// A name shown for the conversation (at most 100 characters).
    #[serde(default)]
    pub display_name: Option<String>,
    /// A description (at most 100 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// An icon URL (http or https).
    #[serde(default)]
    pub icon_url: Option<String>,
    /// Flat key/value data (string, number or boolean values), at most 4 KB.
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConversationArgs {
    /// The conversation's id (24 hex characters).
    pub conversation_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListMessagesArgs {
    /// The conversation's id.
    pub conversation_id: String,
    /// Messages to return, 1 to 100 (default 100): the newest ones before the cursor.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// The nextCursor of the previous call, to go further back in time; omit for the newest.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Who a message is from. Omit it to send as the business.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorArg {
    /// `business` (the default) or `user` (on the user's behalf; then give userId or
    /// userExternalId of a participant).
    #[serde(rename = "type")]
    pub kind: AuthorType,
    /// For a user author: the user's Sunshine Conversations id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// For a user author: the user's externalId.
    #[serde(default)]
    pub user_external_id: Option<String>,
    /// The name shown for the author.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The avatar shown for the author (http or https URL).
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// `["AI"]` marks a business message as AI-generated (the API appends a disclaimer).
    #[serde(default)]
    pub subtypes: Vec<String>,
}

/// Where a message should go: one channel of the user's, by integration id or type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationArg {
    /// The integration (channel) id, from list_integrations.
    #[serde(default)]
    pub integration_id: Option<String>,
    /// The channel type, e.g. `whatsapp`, `messenger`, `web`; `none` stores the message
    /// without delivering it.
    #[serde(default)]
    pub integration_type: Option<String>,
}

impl TryFrom<AuthorArg> for Author {
    type Error = CallError;

    fn try_from(a: AuthorArg) -> Result<Self, CallError> {
        let is_user = a.kind == AuthorType::User;
        if is_user && a.user_id.is_none() && a.user_external_id.is_none() {
            return Err(CallError::invalid(
                "author",
                "a user author needs userId or userExternalId",
            ));
        }
        if !is_user && (a.user_id.is_some() || a.user_external_id.is_some()) {
            return Err(CallError::invalid(
                "author",
                "userId and userExternalId apply only when type is user",
            ));
        }
        if let Some(bad) = a
            .subtypes
            .iter()
            .find(|s| !matches!(s.as_str(), "AI" | "activity"))
        {
            return Err(CallError::invalid(
                "author.subtypes",
                format!("{bad:?} is not a subtype you can send; use AI or activity"),
            ));
        }
        // `author.subtypes`: maxItems 1.
        if a.subtypes.len() > 1 {
            return Err(CallError::invalid(
                "author.subtypes",
                "takes one subtype at most: AI or activity",
            ));
        }
        if let Some(url) = &a.avatar_url {
            crate::mcp::content::check_uri("author.avatarUrl", url)?;
        }
        Ok(Author {
            kind: a.kind,
            subtypes: a.subtypes,
            user_id: a.user_id,
            user_external_id: a.user_external_id,
            brand_id: None,
            display_name: a.display_name,
            avatar_url: a.avatar_url,
        })
    }
}

impl TryFrom<DestinationArg> for Destination {
    type Error = CallError;

    fn try_from(d: DestinationArg) -> Result<Self, CallError> {
        // `destination` is oneOf integrationId | integrationType.
        if d.integration_id.is_some() == d.integration_type.is_some() {
            return Err(CallError::invalid(
                "destination",
                "give exactly one of integrationId and integrationType",
            ));
        }
        Ok(Destination {
            integration_id: d.integration_id,
            integration_type: d.integration_type,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SendMessageArgs {
    /// The conversation to send to.
    pub conversation_id: String,
    /// The message content: the API's content object, chosen by `type`: `text` {text},
    /// `image` {mediaUrl, text?}, `file` {mediaUrl}, `carousel` {items: 1-10 × {title,
    /// description?, mediaUrl?, actions: 1-3}}, `list` {items, actions?}, `location`
    /// {coordinates: {lat, long}, location?}, `form` {fields: 1-20 × {type: text|email|select,
    /// name, label, options? (select)}}, `template` {template} (WhatsApp). Actions are
    /// {type: postback|reply|link|webview|buy|locationRequest, text, payload|uri, ...}.
    /// Checked before anything is sent; an error names the wrong field.
    #[schemars(schema_with = "content_schema")]
    pub content: Value,
    /// Who the message is from; the business when omitted.
    #[serde(default)]
    pub author: Option<AuthorArg>,
    /// Send to one channel of the user's only.
    #[serde(default)]
    pub destination: Option<DestinationArg>,
    /// Flat key/value data stored with the message (string, number or boolean values), ≤ 4 KB.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// A key unique to this message (e.g. a UUID), 1 to 128 characters. Calling again with the
    /// same key returns the first result without sending twice, even after a failure whose
    /// outcome was unknown: the server checks the conversation for the key before sending
    /// again. Strongly recommended for automation. Stored in the message's metadata as
    /// `mcp.idempotencyKey`.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Send as the business even though another switchboard integration (a human agent)
    /// controls the conversation. Only for tokens allowed to override; audited.
    #[serde(default)]
    pub override_control: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetMessageArgs {
    /// The conversation the message is in.
    pub conversation_id: String,
    /// The message's id.
    pub message_id: String,
    /// When the server has not seen the message, how many pages of 100 messages to scan back
    /// from the newest, 1 to 50 (default 10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 50))]
    pub max_pages: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateUserArgs {
    /// Your system's id for the user (unique in the app); lets you address the user later
    /// without knowing the Sunshine Conversations id.
    pub external_id: String,
    /// Name, email, avatar and locale.
    #[serde(default)]
    pub profile: Option<Profile>,
    /// Flat key/value data, at most 4 KB.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// When the user signed up in your system (ISO 8601).
    #[serde(default)]
    pub signed_up_at: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserArgs {
    /// The user's Sunshine Conversations id or externalId (the id is tried first).
    pub user_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FindUsersArgs {
    /// The email address to look for among the users' identities, e.g. sue@example.org.
    pub email: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateUserArgs {
    /// The user's Sunshine Conversations id or externalId (the id is tried first).
    pub user_id: String,
    /// Profile fields to set; fields left out are kept.
    #[serde(default)]
    pub profile: Option<Profile>,
    /// Metadata to set (replaces the user's metadata), at most 4 KB.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// When the user signed up in your system (ISO 8601).
    #[serde(default)]
    pub signed_up_at: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlTargetArgs {
    /// The conversation.
    pub conversation_id: String,
    /// The switchboard integration to hand the conversation to: its id, its name (e.g.
    /// `zd-agentWorkspace`), its integrationType (e.g. `zd:agentWorkspace`) when only one has
    /// it, or `next` to follow the active integration's next one. get_switchboard_status lists
    /// the valid targets.
    pub switchboard_integration: String,
    /// Flat key/value data handed to the receiving integration.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// What the receiving side (a human agent) should know: who the customer is, what they
    /// asked, what was tried. Passed in the control call's metadata as `mcp.summary`; with
    /// `metadata`, at most 4 KB as JSON.
    #[serde(default)]
    pub summary: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlArgs {
    /// The conversation.
    pub conversation_id: String,
    /// Flat key/value data handed along with the control change.
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListIntegrationsArgs {
    /// Only these channel types, e.g. `["whatsapp", "messenger"]`.
    #[serde(default)]
    pub types: Vec<String>,
    /// Integrations per page, 1 to 100 (default 25).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// The nextCursor of the previous page; omit for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IntegrationArgs {
    /// The integration's id.
    pub integration_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryStatusArgs {
    /// The message's id, as send_message returned it.
    pub message_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryFailuresArgs {
    /// Only failures in this conversation; all of the app's when omitted.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// Failures to return, newest first, 1 to 200 (default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
    /// Only failures on this channel type, e.g. `whatsapp`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Only failures with this error code, e.g. `uncategorized_error`.
    #[serde(default)]
    pub code: Option<String>,
    /// Only failures reported after this time (ISO 8601).
    #[serde(default)]
    pub created_after: Option<String>,
    /// Only failures reported before this time (ISO 8601).
    #[serde(default)]
    pub created_before: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    /// Where the list comes from: `api` (a user's conversations, from Sunshine Conversations)
    /// or `index` (without a user: the conversations the webhooks told the server of).
    pub source: &'static str,
    /// A user's conversations (`source` api).
    pub conversations: Vec<Conversation>,
    /// The conversations the webhooks told of, newest activity first (`source` index).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexed: Option<Vec<IndexedConversation>>,
    /// The index holds every conversation the webhooks told of with activity since this time
    /// (ISO 8601): when it started hearing, or what its bounds made it forget. A conversation
    /// quiet since before it is not in it, which does not mean it does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_reaches_back: Option<String>,
    /// With `source` index, or filters that need it: whether webhook events arrive at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking: Option<crate::actors::delivery::Tracking>,
    /// With filters: what they were, how many conversations they looked at and left out, and
    /// which they could not decide (`unknown`: not listed, may match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtered: Option<crate::operations::conversations::FilterReport>,
    /// True when another page exists; pass nextCursor to get it.
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What the webhooks told of one conversation.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexedConversation {
    pub id: String,
    /// When it was created (ISO 8601), when a conversation:create said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The last activity heard of (ISO 8601).
    pub last_activity_at: String,
    /// The id of the switchboard integration in control, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_switchboard_integration_id: Option<String>,
    /// The id of the switchboard integration offered control, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_switchboard_integration_id: Option<String>,
    /// The channel of the user's last message (e.g. whatsapp), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_user_channel: Option<String>,
    /// True when the last message came from the user: it waits for a reply.
    pub awaiting_reply: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationOut {
    pub conversation: Conversation,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub conversation_id: String,
    /// Oldest first within the page; the page holds the newest messages before the cursor.
    pub messages: Vec<Message>,
    /// True when older messages exist; pass nextCursor to get them.
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentMessages {
    pub conversation_id: String,
    /// The stored message(s); use their ids with get_delivery_status.
    pub messages: Vec<Message>,
    /// True when an earlier call with the same idempotencyKey sent them; nothing was sent now.
    pub replayed: bool,
}

pub use crate::operations::messages::FoundBy;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FoundMessage {
    pub conversation_id: String,
    /// The message as the API showed it: id, received, author, content, source, metadata. A
    /// message seen only through a webhook may lack fields the webhook left out.
    #[schemars(schema_with = "crate::sunco::wire::json_object")]
    pub message: Value,
    pub found_by: FoundBy,
    /// Pages of the conversation read to find it (0 when seen).
    pub pages_scanned: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOut {
    pub user: User,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsersFound {
    /// The email looked for.
    pub email: String,
    /// The users with that email among their identities (none is an empty list).
    pub users: Vec<User>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwitchboardView {
    #[serde(flatten)]
    pub switchboard: Switchboard,
    /// The bots, agent workspaces and other integrations the switchboard routes between.
    pub switchboard_integrations: Vec<SwitchboardIntegration>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwitchboardList {
    /// The app's switchboard (an app has at most one); empty when it has none.
    pub switchboards: Vec<SwitchboardView>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlOut {
    /// What was done.
    pub action: crate::actors::switchboard::ControlAction,
    /// Who controls the conversation now.
    pub status: SwitchboardStatus,
}

/// A channel integration, without any of its secrets.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView {
    pub id: String,
    /// The channel type: web, ios, android, messenger, whatsapp, custom, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// active, inactive or error.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// For custom integrations: where their webhooks point (secrets omitted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookView>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: String,
    pub target: String,
    pub triggers: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationPage {
    pub integrations: Vec<IntegrationView>,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationOut {
    pub integration: IntegrationView,
}

pub use crate::operations::delivery::DeliveryState;

/// The content argument's schema: an object chosen by `type`. Deliberately loose (the full
/// content schema would triple what a model reads of `tools/list`); the server's own checks
/// ([`crate::mcp::content`]) enforce every detail, naming the field.
fn content_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "properties": {"type": {"type": "string", "enum": crate::sunco::wire::Content::SENDABLE}},
        "required": ["type"]
    })
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStatusOut {
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    pub state: DeliveryState,
    /// Present when state is failed: the channel's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeliveryEvent>,
    /// Present when state is failed: what to do next (action, retryable, advice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<crate::sunco::remediation::NextStep>,
    /// Every delivery event received for the message, in arrival order.
    pub events: Vec<DeliveryEvent>,
    /// Whether reports can reach the server at all: read it before trusting an empty answer.
    pub tracking: Tracking,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryFailures {
    /// Newest first.
    pub failures: Vec<DeliveryFailure>,
    /// True when more failures pass the filters than `limit`: raise it, or narrow the filters.
    pub has_more: bool,
    /// Whether reports can reach the server at all: an empty list means "none" only when
    /// tracking.status is on.
    pub tracking: Tracking,
}
