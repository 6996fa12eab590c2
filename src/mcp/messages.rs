//! The message tools: list, send (at most once per idempotency key), find one.

use rmcp::handler::server::wrapper::Json;
use rmcp::model::ProgressNotificationParam;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use super::args::Parameters;
use super::entry::ToolError;
use super::{ZendeskMcp, content, cursor, page_size, record_id};
use crate::call::Call;
use crate::error::CallError;
use crate::mcp::{
    FoundMessage, GetMessageArgs, ListMessagesArgs, MessagePage, SendMessageArgs, SentMessages,
};
use crate::sunco::endpoints::Endpoint;
use crate::sunco::paging::{MESSAGE_PAGE_SIZE, Page};
use crate::sunco::wire::{Author, Destination, MessageListResponse, MessagePost};

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
        call: Call,
        Parameters(a): Parameters<ListMessagesArgs>,
    ) -> Result<Json<MessagePage>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        let limit = page_size("limit", a.limit, 100)?.unwrap_or(100) as usize;
        let page = match &a.cursor {
            Some(c) => Page::before(cursor::decode("list_messages", c)?),
            None => Page::default(),
        };
        let endpoint = Endpoint::ListMessages {
            conversation_id: conversation_id.clone(),
            page,
        };
        let answer: MessageListResponse = self.ops.request(&call, &endpoint).await?;
        Ok(Json(newest_of(conversation_id, answer, limit)))
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
        call: Call,
        Parameters(a): Parameters<SendMessageArgs>,
    ) -> Result<Json<SentMessages>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        let content = content::parse_content(a.content)?;
        content::check_metadata("metadata", &a.metadata)?;
        let author = a
            .author
            .map_or_else(|| Ok(Author::business()), Author::try_from)?;
        let destination = a.destination.map(Destination::try_from).transpose()?;
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
        let key = a.idempotency_key.as_deref();
        let overriding = a.override_control == Some(true);
        let sent = (self.ops)
            .send_message(&call, &conversation_id, body, key, overriding)
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
        call: Call,
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
            .find_message(&call, &conversation_id, &message_id, max_pages, on_page)
            .await?;
        Ok(Json(FoundMessage {
            conversation_id,
            message: found.message,
            found_by: found.by,
            pages_scanned: found.pages_scanned,
        }))
    }
}

/// The newest `limit` messages of an API page (the API pages by 100 from the newest), with the
/// cursor to the older ones.
fn newest_of(conversation_id: String, answer: MessageListResponse, limit: usize) -> MessagePage {
    let mut messages = answer.messages;
    let cut = messages.len().saturating_sub(limit);
    let has_more = cut > 0 || answer.meta.has_more;
    let messages = messages.split_off(cut);
    let next_cursor = match (has_more, messages.first()) {
        (true, Some(oldest)) => Some(cursor::encode("list_messages", &oldest.id)),
        _ => None,
    };
    MessagePage {
        conversation_id,
        has_more: next_cursor.is_some(),
        messages,
        next_cursor,
    }
}
