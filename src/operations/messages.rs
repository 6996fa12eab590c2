//! Finding one message: the API has no endpoint for it.

use serde_json::Value;

use crate::call::Call;
use crate::error::CallError;
use crate::sunco::endpoints::Endpoint;
use crate::sunco::paging::{MESSAGE_PAGE_SIZE, Page};
use crate::sunco::wire::MessageListResponse;

use super::Operations;

/// How a message was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum FoundBy {
    /// A message this server sent or received by webhook.
    Seen,
    /// Found by paging the conversation.
    Scan,
}

/// A message found, as the API showed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub(crate) message: Value,
    pub(crate) by: FoundBy,
    /// Pages of the conversation read (0 when seen).
    pub(crate) pages_scanned: u32,
}

impl Operations {
    /// Message `message_id` of `conversation_id`: from the messages the server has seen, else by
    /// reading the conversation back from the newest, `max_pages` pages of 100 at most.
    /// `on_page(n)` runs after each page read (for progress). Not found: `invalid_argument`
    /// naming `messageId`, saying how far the scan went.
    pub(crate) async fn find_message<F>(
        &self,
        call: &Call,
        conversation_id: &str,
        message_id: &str,
        max_pages: u32,
        mut on_page: impl FnMut(u32) -> F,
    ) -> Result<Found, CallError>
    where
        F: std::future::Future<Output = ()>,
    {
        let tracker = &self.actors.tracker;
        // The record of seen messages is a shortcut: when it cannot be read, scan.
        let seen = tracker.seen(message_id).await.unwrap_or_else(|e| {
            tracing::debug!("cannot look a message up in the delivery record ({e}); scanning");
            None
        });
        if let Some(seen) = seen
            && seen.conversation_id == conversation_id
        {
            return Ok(Found {
                message: seen.message,
                by: FoundBy::Seen,
                pages_scanned: 0,
            });
        }
        let mut before: Option<String> = None;
        for scanned in 1..=max_pages {
            // A cancelled call reads no further page (the dispatcher refuses to send for it).
            let page = before.take().map(Page::before).unwrap_or_default();
            let answer: MessageListResponse = self
                .actors
                .dispatcher
                .call_json(
                    call,
                    &Endpoint::ListMessages {
                        conversation_id: conversation_id.to_owned(),
                        page,
                    },
                )
                .await?;
            on_page(scanned).await;
            let oldest = answer.messages.first().map(|m| m.id.clone());
            if let Some(m) = answer.messages.into_iter().find(|m| m.id == message_id) {
                tracker.remember(conversation_id, &m).await;
                return Ok(Found {
                    message: serde_json::to_value(&m).unwrap_or_default(),
                    by: FoundBy::Scan,
                    pages_scanned: scanned,
                });
            }
            match oldest {
                Some(o) if answer.meta.has_more => before = Some(o),
                _ => {
                    return Err(CallError::NotFound {
                        field: "messageId".into(),
                        reason: format!(
                            "no message {message_id} in conversation {conversation_id} (all {scanned} page(s) scanned): check the id with list_messages"
                        ),
                    });
                }
            }
        }
        Err(CallError::invalid(
            "messageId",
            format!(
                "message {message_id} is not among the newest {} messages of conversation {conversation_id}; raise maxPages (at most 50) to look further back",
                max_pages as usize * MESSAGE_PAGE_SIZE
            ),
        ))
    }
}
