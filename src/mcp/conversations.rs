//! The conversation tools: a user's conversations, create one, get one.

use super::*;

#[tool_router(router = conversation_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "List one user's conversations, newest activity first as the API returns them. The API has no app-wide conversation list: give exactly one of userId (Sunshine Conversations id) or userExternalId. Pages: pass nextCursor back as cursor while hasMore is true.",
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
        Parameters(a): Parameters<ListConversationsArgs>,
    ) -> Result<Json<ConversationPage>, ToolError> {
        let filter = match (a.user_id, a.user_external_id) {
            (Some(id), None) => ConversationFilter::UserId(id_arg("userId", &id)?),
            (None, Some(ext)) => {
                ConversationFilter::UserExternalId(id_arg("userExternalId", &ext)?)
            }
            _ => {
                return Err(CallError::invalid(
                    "userId",
                    "give exactly one of userId and userExternalId: the API lists conversations per user only",
                )
                .into());
            }
        };
        let mut page = Page::default();
        if let Some(c) = &a.cursor {
            page = Page::after(cursor::decode("list_conversations", c)?);
        }
        page.size = page_size("limit", a.limit, 100)?;
        let answer = self.ops.list_conversations(filter, page).await?;
        let last = answer.conversations.last().map(|c| c.id.as_str());
        let next_cursor = forward_cursor("list_conversations", &answer.meta, last);
        Ok(Json(ConversationPage {
            has_more: next_cursor.is_some(),
            conversations: answer.conversations,
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
            .actors
            .dispatcher
            .call_json(&Endpoint::CreateConversation(body))
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
        Parameters(a): Parameters<ConversationArgs>,
    ) -> Result<Json<ConversationOut>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        let answer: ConversationResponse = self
            .ops
            .actors
            .dispatcher
            .call_json(&Endpoint::GetConversation { conversation_id })
            .await?;
        Ok(Json(ConversationOut {
            conversation: answer.conversation,
        }))
    }
}
