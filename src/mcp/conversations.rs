//! The conversation tools: a user's conversations, create one, get one.

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::Parameters;
use super::entry::ToolError;
use super::types::ConversationArgs;
use crate::sunco::wire::{Conversation, Metadata};

use super::{
    ZendeskMcp, content, cursor, forward_cursor, id_arg, opt_id_arg, page_size, record_id,
};
use crate::call::Call;
use crate::error::CallError;
use crate::operations::conversations::ConversationQuery;
use crate::sunco::endpoints::{ConversationFilter, Endpoint};
use crate::sunco::paging::Page;

use crate::sunco::wire::{
    ConversationCreate, ConversationResponse, ConversationType, ConversationUpdate, ParticipantRef,
};

#[tool_router(router = conversation_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "List one user's conversations (userId or userExternalId), newest activity first as the API returns them; pages: pass nextCursor back as cursor while hasMore is true. Without a user: the conversations the server has heard of through webhooks, in the same `conversations` list (source index, with awaitingReply and claimedUntil; while hasMore, call again with continueWith); indexReachesBack says how far back it goes. Filters apply to both: who controls it, who was offered it (by id, name or type), created/updated times, and (from the webhooks) channel and awaitingReply; filtered.unknown lists conversations a filter could not decide",
        annotations(
            title = "List a user's conversations",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn list_conversations(
        &self,
        call: Call,
        Parameters(a): Parameters<ListConversationsArgs>,
    ) -> Result<Json<ConversationPage>, ToolError> {
        let query = conversation_query(&a)?;
        let Some(filter) = user_filter(a.user_id, a.user_external_id)? else {
            return (self.list_indexed(a.limit, a.cursor.as_deref(), &query)).await;
        };
        let mut page = Page::default();
        if let Some(c) = &a.cursor {
            page = Page::after(cursor::decode("list_conversations", c)?);
        }
        page.size = page_size("limit", a.limit, 100)?;
        let list = self
            .ops
            .list_user_conversations(&call, filter, page, &query)
            .await?;
        let answer = list.answer;
        let next_cursor =
            forward_cursor("list_conversations", &answer.meta, list.last_id.as_deref());
        let (reach, tracking) = list.index.unzip();
        Ok(Json(ConversationPage {
            source: "api",
            has_more: next_cursor.is_some(),
            conversations: answer.conversations.into_iter().map(Listed::Api).collect(),
            index_reaches_back: reach.flatten().map(iso),
            tracking,
            filtered: list.filtered,
            claims_unknown: None,
            next_cursor,
            continue_with: None,
        }))
    }

    #[tool(
        description = "Create a conversation. `personal` (the default) has exactly one participant; `sdkGroup` up to 10. Participants are existing users (create_user first), by userId or userExternalId. Not idempotent: each call creates a new conversation.",
        annotations(
            title = "Create a conversation",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn create_conversation(
        &self,
        call: Call,
        Parameters(a): Parameters<CreateConversationArgs>,
    ) -> Result<Json<ConversationOut>, ToolError> {
        let kind = a.kind.unwrap_or(ConversationType::Personal);
        let participants = participants(kind, a.participants)?;
        check_presentation(&a.display_name, &a.description, &a.icon_url, &a.metadata)?;
        let body = ConversationCreate {
            kind,
            participants,
            display_name: a.display_name,
            description: a.description,
            icon_url: a.icon_url,
            metadata: a.metadata,
        };
        let answer: ConversationResponse = self
            .ops
            .request(&call, &Endpoint::CreateConversation(body))
            .await?;
        Ok(Json(ConversationOut {
            conversation: answer.conversation,
        }))
    }

    #[tool(
        description = "Update a conversation's displayName, description, iconUrl or metadata (bots keep state there); fields left out are kept, and metadata replaces the whole object. Repeating the same update leaves the same result.",
        annotations(
            title = "Update a conversation",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn update_conversation(
        &self,
        call: Call,
        Parameters(a): Parameters<UpdateConversationArgs>,
    ) -> Result<Json<ConversationOut>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        check_presentation(&a.display_name, &a.description, &a.icon_url, &a.metadata)?;
        let body = ConversationUpdate {
            display_name: a.display_name,
            description: a.description,
            icon_url: a.icon_url,
            metadata: a.metadata,
        };
        if body == ConversationUpdate::default() {
            return Err(CallError::invalid(
                "metadata",
                "nothing to update: give displayName, description, iconUrl or metadata",
            )
            .into());
        }
        let endpoint = Endpoint::UpdateConversation {
            conversation_id,
            body,
        };
        let answer: ConversationResponse = self.ops.request(&call, &endpoint).await?;
        Ok(Json(ConversationOut {
            conversation: answer.conversation,
        }))
    }

    #[tool(
        description = "Get one conversation: type, metadata, and which switchboard integration is active (in control) and which is pending (offered control).",
        annotations(
            title = "Get a conversation",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_conversation(
        &self,
        call: Call,
        Parameters(a): Parameters<ConversationArgs>,
    ) -> Result<Json<ConversationOut>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        let answer: ConversationResponse = self
            .ops
            .request(&call, &Endpoint::GetConversation { conversation_id })
            .await?;
        Ok(Json(ConversationOut {
            conversation: answer.conversation,
        }))
    }
}

/// The participants of a new conversation of type `kind`, checked.
fn participants(
    kind: ConversationType,
    given: Vec<ParticipantArg>,
) -> Result<Vec<ParticipantRef>, CallError> {
    if kind == ConversationType::Personal && given.len() != 1 {
        return Err(CallError::invalid(
            "participants",
            "a personal conversation has exactly one participant (use type sdkGroup for more)",
        ));
    }
    if given.len() > 10 {
        return Err(CallError::invalid(
            "participants",
            "at most 10 participants",
        ));
    }
    let mut participants = Vec::with_capacity(given.len());
    for (i, p) in given.into_iter().enumerate() {
        if p.user_id.is_some() == p.user_external_id.is_some() {
            return Err(CallError::invalid(
                format!("participants[{i}]"),
                "give exactly one of userId and userExternalId",
            ));
        }
        // `participantSubSchema.subscribeSDKClient`: "required if the conversation is of type
        // sdkGroup".
        if kind == ConversationType::SdkGroup && p.subscribe_sdk_client.is_none() {
            return Err(CallError::invalid(
                format!("participants[{i}].subscribeSDKClient"),
                "is required for an sdkGroup conversation: true subscribes the user's SDK client (push notifications at once), false does not",
            ));
        }
        participants.push(ParticipantRef {
            user_id: p.user_id,
            user_external_id: p.user_external_id,
            subscribe_sdk_client: p.subscribe_sdk_client,
        });
    }
    Ok(participants)
}

/// The user whose conversations are listed: by id or by externalId, not both; `None` for none
/// (the index's conversations).
fn user_filter(
    user_id: Option<String>,
    user_external_id: Option<String>,
) -> Result<Option<ConversationFilter>, CallError> {
    Ok(match (user_id, user_external_id) {
        (Some(id), None) => Some(ConversationFilter::UserId(id_arg("userId", &id)?)),
        (None, Some(ext)) => Some(ConversationFilter::UserExternalId(id_arg(
            "userExternalId",
            &ext,
        )?)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(CallError::invalid(
                "userId",
                "give one of userId and userExternalId, not both",
            ));
        }
    })
}

/// What a conversation shows and keeps, as create_conversation and update_conversation take
/// it: names and descriptions within the API's 100 characters, an http(s) icon, flat metadata
/// within 4 KB.
fn check_presentation(
    display_name: &Option<String>,
    description: &Option<String>,
    icon_url: &Option<String>,
    metadata: &Option<Metadata>,
) -> Result<(), CallError> {
    content::check_metadata("metadata", metadata)?;
    content::check_short_text("displayName", display_name)?;
    content::check_short_text("description", description)?;
    if let Some(icon) = icon_url {
        content::check_uri("iconUrl", icon)?;
    }
    Ok(())
}

fn iso(ms: i64) -> String {
    crate::sunco::ids::from_unix_ms(ms)
        .map(crate::sunco::ids::format_timestamp)
        .unwrap_or_default()
}

/// The filters of a `list_conversations` call, checked.
fn conversation_query(a: &ListConversationsArgs) -> Result<ConversationQuery, CallError> {
    let mut applied = serde_json::Map::new();
    let mut note = |name: &str, v: serde_json::Value| {
        applied.insert(name.to_owned(), v);
    };
    let q = ConversationQuery {
        active_switchboard_integration: opt_id_arg(
            "activeSwitchboardIntegration",
            &a.active_switchboard_integration,
        )?,
        pending_switchboard_integration: opt_id_arg(
            "pendingSwitchboardIntegration",
            &a.pending_switchboard_integration,
        )?,
        created_after: ConversationQuery::time("createdAfter", a.created_after.as_deref())?,
        created_before: ConversationQuery::time("createdBefore", a.created_before.as_deref())?,
        updated_after: ConversationQuery::time("updatedAfter", a.updated_after.as_deref())?,
        updated_before: ConversationQuery::time("updatedBefore", a.updated_before.as_deref())?,
        channel: opt_id_arg("channel", &a.channel)?,
        awaiting_reply: a.awaiting_reply,
        applied: serde_json::Map::new(),
    };
    for (name, v) in [
        (
            "activeSwitchboardIntegration",
            &a.active_switchboard_integration,
        ),
        (
            "pendingSwitchboardIntegration",
            &a.pending_switchboard_integration,
        ),
        ("createdAfter", &a.created_after),
        ("createdBefore", &a.created_before),
        ("updatedAfter", &a.updated_after),
        ("updatedBefore", &a.updated_before),
        ("channel", &a.channel),
    ] {
        if let Some(v) = v {
            note(name, v.trim().into());
        }
    }
    if let Some(w) = a.awaiting_reply {
        note("awaitingReply", w.into());
    }
    Ok(ConversationQuery { applied, ..q })
}

impl ZendeskMcp {
    /// `list_conversations` without a user: the newest of what the webhooks told of.
    async fn list_indexed(
        &self,
        limit: Option<u32>,
        cursor: Option<&str>,
        query: &ConversationQuery,
    ) -> Result<Json<ConversationPage>, ToolError> {
        if cursor.is_some() {
            return Err(CallError::invalid(
                "cursor",
                "without a user the list pages by time, not by cursor: call again with the answer's continueWith (updatedBefore: the lastActivityAt of the last conversation you got) and the same filters",
            )
            .into());
        }
        let limit = page_size("limit", limit, 100)?.unwrap_or(25) as usize;
        let list = self.ops.list_indexed_conversations(limit, query).await?;
        // Names beside the ids the webhooks gave, from the routing picture (ids alone when it
        // cannot be read: the list is still useful).
        let picture = self.ops.routing(false).await.ok();
        let named = |id: Option<String>| {
            id.map(|id| {
                let known = picture.as_ref().and_then(|p| p.by_id(&id));
                NamedIntegration {
                    name: known.map(|s| s.name.clone()),
                    integration_type: known.map(|s| s.integration_type.clone()),
                    id,
                }
            })
        };
        // The next page: what was active before the last one listed.
        let continue_with = (list.has_more)
            .then(|| list.entries.last().map(|e| iso(e.last_activity_at)))
            .flatten()
            .map(|at| serde_json::json!({"updatedBefore": at}));
        let conversations = list
            .entries
            .into_iter()
            .zip(list.claimed_until)
            .map(|(e, claimed)| {
                Listed::Index(IndexedConversation {
                    claimed_until: claimed.map(iso),
                    id: e.conversation_id,
                    created_at: e.created_at.map(iso),
                    last_activity_at: iso(e.last_activity_at),
                    active_switchboard_integration: named(e.active_switchboard_integration),
                    pending_switchboard_integration: named(e.pending_switchboard_integration),
                    last_user_channel: e.last_user_channel,
                    awaiting_reply: e.awaiting_reply,
                })
            })
            .collect();
        Ok(Json(ConversationPage {
            source: "index",
            conversations,
            index_reaches_back: list.reach.map(iso),
            tracking: Some(list.tracking),
            filtered: list.filtered,
            claims_unknown: list.claims_unknown.then_some(true),
            has_more: list.has_more,
            next_cursor: None,
            continue_with,
        }))
    }
}

// The arguments and results of these tools: the `///` docs become the schemas an LLM reads.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListConversationsArgs {
    /// The user whose conversations to list: the Sunshine Conversations user id, or the
    /// externalId (the id is tried first). Give at most one of userId and userExternalId;
    /// give neither to list the conversations the server has heard of through webhooks.
    #[serde(default)]
    pub(crate) user_id: Option<String>,
    /// The user whose conversations to list, by your system's externalId.
    #[serde(default)]
    pub(crate) user_external_id: Option<String>,
    /// Conversations per page, 1 to 100 (default 25).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub(crate) limit: Option<u32>,
    /// The nextCursor of the previous page; omit for the first page.
    #[serde(default)]
    pub(crate) cursor: Option<String>,
    /// Only conversations this switchboard integration controls (its id, name or
    /// integrationType, e.g. `bot`).
    #[serde(default)]
    pub(crate) active_switchboard_integration: Option<String>,
    /// Only conversations offered to this switchboard integration (id, name or type).
    #[serde(default)]
    pub(crate) pending_switchboard_integration: Option<String>,
    /// Only conversations created after this time (ISO 8601).
    #[serde(default)]
    pub(crate) created_after: Option<String>,
    /// Only conversations created before this time (ISO 8601).
    #[serde(default)]
    pub(crate) created_before: Option<String>,
    /// Only conversations last active after this time (ISO 8601).
    #[serde(default)]
    pub(crate) updated_after: Option<String>,
    /// Only conversations last active before this time (ISO 8601).
    #[serde(default)]
    pub(crate) updated_before: Option<String>,
    /// Only conversations whose user last wrote through this channel type, e.g. `whatsapp`.
    #[serde(default)]
    pub(crate) channel: Option<String>,
    /// true: only conversations whose last message came from the user (waiting for a reply);
    /// false: only those the business answered last.
    #[serde(default)]
    pub(crate) awaiting_reply: Option<bool>,
}

/// A participant of a new conversation: the user by id or by externalId.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ParticipantArg {
    /// The user's Sunshine Conversations id.
    #[serde(default)]
    pub(crate) user_id: Option<String>,
    /// The user's externalId.
    #[serde(default)]
    pub(crate) user_external_id: Option<String>,
    /// For sdkGroup conversations: whether the user's SDK clients are subscribed.
    #[serde(default, rename = "subscribeSDKClient")]
    pub(crate) subscribe_sdk_client: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateConversationArgs {
    /// `personal` (the default: exactly one participant) or `sdkGroup` (up to 10).
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<ConversationType>,
    /// The users taking part. The users must exist already (create_user first).
    #[serde(default)]
    pub(crate) participants: Vec<ParticipantArg>,
    /// A name shown for the conversation (at most 100 characters).
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    /// A description (at most 100 characters).
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// An icon URL (http or https).
    #[serde(default)]
    pub(crate) icon_url: Option<String>,
    /// Flat key/value data (string, number or boolean values), at most 4 KB.
    #[serde(default)]
    pub(crate) metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpdateConversationArgs {
    /// The conversation's id.
    pub(crate) conversation_id: String,
    /// A name shown for the conversation (at most 100 characters).
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    /// A description (at most 100 characters).
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// An icon URL (http or https).
    #[serde(default)]
    pub(crate) icon_url: Option<String>,
    /// Flat key/value data (string, number or boolean values), at most 4 KB; replaces the
    /// conversation's metadata.
    #[serde(default)]
    pub(crate) metadata: Option<Metadata>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConversationPage {
    /// Where the list comes from: `api` (a user's conversations, from Sunshine Conversations)
    /// or `index` (without a user: the conversations the webhooks told the server of).
    pub(crate) source: &'static str,
    /// A user's conversations as the API shows them (`source` api), or the conversations the
    /// webhooks told of, newest activity first (`source` index).
    pub(crate) conversations: Vec<Listed>,
    /// The index holds every conversation the webhooks told of with activity since this time
    /// (ISO 8601): when it started hearing, or what its bounds made it forget. A conversation
    /// quiet since before it is not in it, which does not mean it does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) index_reaches_back: Option<String>,
    /// With `source` index, or filters that need it: whether webhook events arrive at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tracking: Option<crate::actors::delivery::Tracking>,
    /// With filters: what they were, how many conversations they looked at and left out, and
    /// which they could not decide (`unknown`: not listed, may match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) filtered: Option<crate::operations::conversations::FilterReport>,
    /// True when the claims could not be read: a missing claimedUntil then says nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) claims_unknown: Option<bool>,
    /// True when another page exists; pass nextCursor to get it.
    pub(crate) has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
    /// Without a user (`source` index), while hasMore: the arguments to call again with, beside
    /// the same filters, for the conversations after these.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::sunco::wire::json_object")]
    pub(crate) continue_with: Option<serde_json::Value>,
}

/// One conversation of a list: as the API shows it, or as the webhooks told of it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum Listed {
    Api(Conversation),
    Index(IndexedConversation),
}

/// A switchboard integration the webhooks named by id, with its name and type from the
/// switchboard (when it could be read).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NamedIntegration {
    pub(crate) id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) integration_type: Option<String>,
}

/// What the webhooks told of one conversation.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexedConversation {
    pub(crate) id: String,
    /// Claimed by an agent (claim_conversation) until then (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) claimed_until: Option<String>,
    /// When it was created (ISO 8601), when a conversation:create said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) created_at: Option<String>,
    /// The last activity heard of (ISO 8601).
    pub(crate) last_activity_at: String,
    /// The switchboard integration in control, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) active_switchboard_integration: Option<NamedIntegration>,
    /// The switchboard integration offered control, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pending_switchboard_integration: Option<NamedIntegration>,
    /// The channel of the user's last message (e.g. whatsapp), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_user_channel: Option<String>,
    /// True when the last message came from the user: it waits for a reply.
    pub(crate) awaiting_reply: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConversationOut {
    pub(crate) conversation: Conversation,
}
