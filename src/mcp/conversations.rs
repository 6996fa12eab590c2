//! The conversation tools: a user's conversations, create one, get one.

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};

use super::args::Parameters;
use super::entry::ToolError;
use super::{
    ZendeskMcp, content, cursor, forward_cursor, id_arg, opt_id_arg, page_size, record_id,
};
use crate::call::Call;
use crate::error::CallError;
use crate::mcp::{
    ConversationArgs, ConversationOut, ConversationPage, CreateConversationArgs,
    IndexedConversation, ListConversationsArgs,
};
use crate::operations::conversations::ConversationQuery;
use crate::sunco::endpoints::{ConversationFilter, Endpoint};
use crate::sunco::paging::Page;
use crate::sunco::wire::{
    ConversationCreate, ConversationResponse, ConversationType, ParticipantRef,
};

#[tool_router(router = conversation_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "List one user's conversations (userId or userExternalId), newest activity first as the API returns them; pages: pass nextCursor back as cursor while hasMore is true. Without a user, list the conversations the server has heard of through webhooks (source index); indexReachesBack says how far back it goes. Filters apply to both: who controls it, who was offered it, created/updated times, and (from the webhooks) channel and awaitingReply; filtered.unknown lists conversations a filter could not decide",
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
        let filter = match (a.user_id, a.user_external_id) {
            (Some(id), None) => ConversationFilter::UserId(id_arg("userId", &id)?),
            (None, Some(ext)) => {
                ConversationFilter::UserExternalId(id_arg("userExternalId", &ext)?)
            }
            (None, None) => {
                return self
                    .list_indexed(a.limit, a.cursor.as_deref(), &query)
                    .await;
            }
            (Some(_), Some(_)) => {
                return Err(CallError::invalid(
                    "userId",
                    "give one of userId and userExternalId, not both",
                )
                .into());
            }
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
            conversations: answer.conversations,
            indexed: None,
            index_reaches_back: reach.flatten().map(iso),
            tracking,
            filtered: list.filtered,
            next_cursor,
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
        if kind == ConversationType::Personal && a.participants.len() != 1 {
            return Err(CallError::invalid(
                "participants",
                "a personal conversation has exactly one participant (use type sdkGroup for more)",
            )
            .into());
        }
        if a.participants.len() > 10 {
            return Err(CallError::invalid("participants", "at most 10 participants").into());
        }
        let mut participants = Vec::with_capacity(a.participants.len());
        for (i, p) in a.participants.into_iter().enumerate() {
            if p.user_id.is_some() == p.user_external_id.is_some() {
                return Err(CallError::invalid(
                    format!("participants[{i}]"),
                    "give exactly one of userId and userExternalId",
                )
                .into());
            }
            // `participantSubSchema.subscribeSDKClient`: "required if the conversation is of
            // type sdkGroup".
            if kind == ConversationType::SdkGroup && p.subscribe_sdk_client.is_none() {
                return Err(CallError::invalid(
                    format!("participants[{i}].subscribeSDKClient"),
                    "is required for an sdkGroup conversation: true subscribes the user's SDK client (push notifications at once), false does not",
                )
                .into());
            }
            participants.push(ParticipantRef {
                user_id: p.user_id,
                user_external_id: p.user_external_id,
                subscribe_sdk_client: p.subscribe_sdk_client,
            });
        }
        content::check_metadata("metadata", &a.metadata)?;
        content::check_short_text("displayName", &a.display_name)?;
        content::check_short_text("description", &a.description)?;
        if let Some(icon) = &a.icon_url {
            content::check_uri("iconUrl", icon)?;
        }
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
                "without a user the list is the newest conversations the server has heard of, in one page: leave cursor out and raise limit (up to 100)",
            )
            .into());
        }
        let limit = page_size("limit", limit, 100)?.unwrap_or(25) as usize;
        let list = self.ops.list_indexed_conversations(limit, query).await?;
        let indexed = list
            .entries
            .into_iter()
            .map(|e| IndexedConversation {
                id: e.conversation_id,
                created_at: e.created_at.map(iso),
                last_activity_at: iso(e.last_activity_at),
                active_switchboard_integration_id: e.active_switchboard_integration,
                pending_switchboard_integration_id: e.pending_switchboard_integration,
                last_user_channel: e.last_user_channel,
                awaiting_reply: e.awaiting_reply,
            })
            .collect();
        Ok(Json(ConversationPage {
            source: "index",
            conversations: vec![],
            indexed: Some(indexed),
            index_reaches_back: list.reach.map(iso),
            tracking: Some(list.tracking),
            filtered: list.filtered,
            has_more: list.has_more,
            next_cursor: None,
        }))
    }
}
