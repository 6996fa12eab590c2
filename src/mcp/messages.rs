//! The message tools: list, send (at most once per idempotency key), find one.

use super::*;

#[tool_router(router = message_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "List a conversation's messages, the newest first by page: the first call returns the newest `limit` messages (oldest first within the page); pass nextCursor back as cursor to go further back in time while hasMore is true.",
        annotations(
            title = "List messages",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn list_messages(
        &self,
        Parameters(a): Parameters<ListMessagesArgs>,
    ) -> Result<Json<MessagePage>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        let limit = page_size("limit", a.limit, 100)?.unwrap_or(100) as usize;
        let page = match &a.cursor {
            Some(c) => Page::before(cursor::decode("list_messages", c)?),
            None => Page::default(),
        };
        let answer: MessageListResponse = self
            .ops
            .actors
            .dispatcher
            .call_json(&Endpoint::ListMessages {
                conversation_id: conversation_id.clone(),
                page,
            })
            .await?;
        // The API pages by 100 from the newest; keep the newest `limit` of the page.
        let mut messages = answer.messages;
        let cut = messages.len().saturating_sub(limit);
        let has_more = cut > 0 || answer.meta.has_more;
        let messages = messages.split_off(cut);
        let next_cursor = match (has_more, messages.first()) {
            (true, Some(oldest)) => Some(cursor::encode("list_messages", &oldest.id)),
            _ => None,
        };
        Ok(Json(MessagePage {
            conversation_id,
            has_more: next_cursor.is_some(),
            messages,
            next_cursor,
        }))
    }

    #[tool(
        description = "Send a message to a conversation: text, image, file, carousel, list, location, form or template. `content` is the API's content object; it is checked before anything is sent. The author is the business unless given. Not idempotent by itself: give an idempotencyKey so that a repeated call (after a timeout, say) never sends twice. The result means the API stored it; delivery to the channel is reported later (get_delivery_status).",
        annotations(
            title = "Send a message",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn send_message(
        &self,
        Parameters(a): Parameters<SendMessageArgs>,
    ) -> Result<Json<SentMessages>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        let content = content::parse_content(a.content)?;
        content::check_metadata("metadata", &a.metadata)?;
        let author = a
            .author
            .map_or_else(|| Ok(Author::business()), Author::try_from)?;
        let destination = a.destination.map(Destination::try_from).transpose()?;
        // The send guard: a business message only where the caller's integration is in control.
        let rules = caller_rules();
        let overriding = a.override_control == Some(true);
        if overriding && !rules.allow_override {
            return Err(CallError::invalid(
                "overrideControl",
                "this caller may not send over another switchboard integration: only a token with allow_override = true in the tokens file may; leave it out",
            )
            .into());
        }
        if let Some(mine) = &rules.switchboard_integration
            && author.kind == crate::sunco::wire::AuthorType::Business
            && !overriding
        {
            self.ops.check_control(&conversation_id, mine).await?;
        }
        // WhatsApp templates must say which schema they follow.
        let schema = matches!(content, crate::sunco::wire::Content::Template { .. })
            .then(|| "whatsapp".to_owned());
        let body = MessagePost {
            author,
            content,
            destination,
            metadata: a.metadata,
            schema,
            r#override: None,
        };
        let sent = self
            .ops
            .sends
            .send(&conversation_id, body, a.idempotency_key.as_deref())
            .await?;
        Ok(Json(SentMessages {
            conversation_id,
            messages: sent.messages,
            replayed: sent.replayed,
        }))
    }

    #[tool(
        description = "Get one message by id. The API has no such endpoint: the server answers from messages it has seen (its own sends, webhook events), else scans the conversation back from the newest, maxPages pages of 100 at most, sending progress notifications while it scans.",
        annotations(
            title = "Get a message",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_message(
        &self,
        Parameters(a): Parameters<GetMessageArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<FoundMessage>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        let message_id = record_id("messageId", &a.message_id)?;
        let max_pages = match a.max_pages {
            None => 10,
            Some(n @ 1..=50) => n,
            Some(_) => {
                return Err(CallError::invalid("maxPages", "must be from 1 to 50").into());
            }
        };
        let progress = ctx.meta.get_progress_token();
        let (ctx, progress, conversation) = (&ctx, &progress, &conversation_id);
        let on_page = move |scanned: u32| async move {
            self.log(
                ctx,
                "info",
                serde_json::json!({"scanning": conversation, "page": scanned, "of": max_pages}),
            )
            .await;
            if let Some(token) = progress {
                let mut note = ProgressNotificationParam::new(token.clone(), f64::from(scanned));
                note.total = Some(f64::from(max_pages));
                note.message = Some(format!(
                    "scanned {} messages",
                    scanned as usize * MESSAGE_PAGE_SIZE
                ));
                let _ = ctx.peer.notify_progress(note).await;
            }
        };
        let found = self
            .ops
            .find_message(&conversation_id, &message_id, max_pages, on_page)
            .await?;
        Ok(Json(FoundMessage {
            conversation_id,
            message: found.message,
            found_by: found.by,
            pages_scanned: found.pages_scanned,
        }))
    }
}
