//! The message tools: list, send (at most once per idempotency key), find one.

use rmcp::handler::server::wrapper::Json;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::args::Parameters;
use super::entry::ToolError;
use super::{ZendeskMcp, content, cursor, page_size, record_id};
use crate::call::Call;
use crate::error::CallError;
use crate::operations::claims::Answering;
use crate::sunco::endpoints::Endpoint;
use crate::sunco::paging::{MESSAGE_PAGE_SIZE, Page};
use crate::sunco::wire::{
    Author, AuthorType, Destination, Message, MessageListResponse, MessagePost, Metadata,
};

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
        let answering = a.answering()?;
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
            .send_message(&call, &conversation_id, body, key, overriding, &answering)
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
        let (ctx, conversation, progress) = (&ctx, &conversation_id, call.progress());
        let on_page = move |scanned| self.scanned(ctx, progress, conversation, scanned, max_pages);
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

impl ZendeskMcp {
    /// What a `get_message` scan tells the client after each page: a log notification, and
    /// progress when the call asked for it.
    async fn scanned(
        &self,
        ctx: &RequestContext<RoleServer>,
        progress: Option<&crate::call::Progress>,
        conversation: &str,
        scanned: u32,
        max_pages: u32,
    ) {
        let at = serde_json::json!({"scanning": conversation, "page": scanned, "of": max_pages});
        self.log(ctx, "info", at).await;
        if let Some(p) = progress {
            let messages = scanned as usize * MESSAGE_PAGE_SIZE;
            let told = format!("scanned {messages} messages");
            (p.tell(f64::from(scanned), Some(f64::from(max_pages)), told)).await;
        }
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

// The arguments and results of these tools: the `///` docs become the schemas an LLM reads.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListMessagesArgs {
    /// The conversation's id.
    pub(crate) conversation_id: String,
    /// Messages to return, 1 to 100 (default 100): the newest ones before the cursor.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub(crate) limit: Option<u32>,
    /// The nextCursor of the previous call, to go further back in time; omit for the newest.
    #[serde(default)]
    pub(crate) cursor: Option<String>,
}

/// Who a message is from. Omit it to send as the business.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct AuthorArg {
    /// `business` (the default) or `user` (on the user's behalf; then give userId or
    /// userExternalId of a participant).
    #[serde(rename = "type")]
    pub(crate) kind: AuthorType,
    /// For a user author: the user's Sunshine Conversations id.
    #[serde(default)]
    pub(crate) user_id: Option<String>,
    /// For a user author: the user's externalId.
    #[serde(default)]
    pub(crate) user_external_id: Option<String>,
    /// The name shown for the author.
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    /// The avatar shown for the author (http or https URL).
    #[serde(default)]
    pub(crate) avatar_url: Option<String>,
    /// `["AI"]` marks a business message as AI-generated (the API appends a disclaimer).
    #[serde(default)]
    pub(crate) subtypes: Vec<String>,
}

/// Where a message should go: one channel of the user's, by integration id or type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DestinationArg {
    /// The integration (channel) id, from list_integrations.
    #[serde(default)]
    pub(crate) integration_id: Option<String>,
    /// The channel type, e.g. `whatsapp`, `messenger`, `web`; `none` stores the message
    /// without delivering it.
    #[serde(default)]
    pub(crate) integration_type: Option<String>,
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
pub(crate) struct SendMessageArgs {
    /// The conversation to send to.
    pub(crate) conversation_id: String,
    /// The message content: the API's content object, chosen by `type`: `text` {text},
    /// `image` {mediaUrl, text?}, `file` {mediaUrl}, `carousel` {items: 1-10 × {title,
    /// description?, mediaUrl?, actions: 1-3}}, `list` {items, actions?}, `location`
    /// {coordinates: {lat, long}, location?}, `form` {fields: 1-20 × {type: text|email|select,
    /// name, label, options? (select)}}, `template` {template} (WhatsApp). Actions are
    /// {type: postback|reply|link|webview|buy|locationRequest, text, payload|uri, ...}.
    /// Checked before anything is sent; an error names the wrong field.
    #[schemars(schema_with = "content_schema")]
    pub(crate) content: Value,
    /// Who the message is from; the business when omitted.
    #[serde(default)]
    pub(crate) author: Option<AuthorArg>,
    /// Send to one channel of the user's only.
    #[serde(default)]
    pub(crate) destination: Option<DestinationArg>,
    /// Flat key/value data stored with the message (string, number or boolean values), ≤ 4 KB.
    #[serde(default)]
    pub(crate) metadata: Option<Metadata>,
    /// A key unique to this message (e.g. a UUID), 1 to 128 characters. Calling again with the
    /// same key returns the first result without sending twice, even after a failure whose
    /// outcome was unknown: the server checks the conversation for the key before sending
    /// again. Strongly recommended for automation. Stored in the message's metadata as
    /// `mcp.idempotencyKey`.
    #[serde(default)]
    pub(crate) idempotency_key: Option<String>,
    /// Send as the business even though another switchboard integration (a human agent)
    /// controls the conversation. Only for tokens allowed to override; audited.
    #[serde(default)]
    pub(crate) override_control: Option<bool>,
    /// Your claim (claim_conversation): sent only while it is yours and no user message came
    /// after those it showed (else superseded, with them). Ends the claim as answered.
    #[serde(default)]
    pub(crate) claim: Option<String>,
    /// Keep the claim after this send (more to say).
    #[serde(default)]
    pub(crate) keep_claim: Option<bool>,
    /// Without a claim: the user message this answers; superseded if a user message came after.
    #[serde(default)]
    pub(crate) in_reply_to: Option<String>,
}

impl SendMessageArgs {
    /// How the message answers: under a claim, in reply to a message, or neither.
    fn answering(&self) -> Result<Answering, CallError> {
        match (&self.claim, &self.in_reply_to) {
            (Some(_), Some(_)) => Err(CallError::invalid(
                "inReplyTo",
                "goes without a claim: a claim already knows what it answers; leave inReplyTo out",
            )),
            (Some(token), None) => Ok(Answering::Claim {
                token: token.clone(),
                keep: self.keep_claim == Some(true),
            }),
            (None, Some(id)) => {
                if self.keep_claim.is_some() {
                    return Err(CallError::invalid("keepClaim", "goes with claim only"));
                }
                Ok(Answering::InReplyTo(record_id("inReplyTo", id)?))
            }
            (None, None) if self.keep_claim.is_some() => {
                Err(CallError::invalid("keepClaim", "goes with claim only"))
            }
            (None, None) => Ok(Answering::Unsaid),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct GetMessageArgs {
    /// The conversation the message is in.
    pub(crate) conversation_id: String,
    /// The message's id.
    pub(crate) message_id: String,
    /// When the server has not seen the message, how many pages of 100 messages to scan back
    /// from the newest, 1 to 50 (default 10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 50))]
    pub(crate) max_pages: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessagePage {
    pub(crate) conversation_id: String,
    /// Oldest first within the page; the page holds the newest messages before the cursor.
    pub(crate) messages: Vec<Message>,
    /// True when older messages exist; pass nextCursor to get them.
    pub(crate) has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SentMessages {
    pub(crate) conversation_id: String,
    /// The stored message(s); use their ids with get_delivery_status.
    pub(crate) messages: Vec<Message>,
    /// True when an earlier call with the same idempotencyKey sent them; nothing was sent now.
    pub(crate) replayed: bool,
}

pub(crate) use crate::operations::messages::FoundBy;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FoundMessage {
    pub(crate) conversation_id: String,
    /// The message as the API showed it: id, received, author, content, source, metadata. A
    /// message seen only through a webhook may lack fields the webhook left out.
    #[schemars(schema_with = "crate::sunco::wire::json_object")]
    pub(crate) message: Value,
    pub(crate) found_by: FoundBy,
    /// Pages of the conversation read to find it (0 when seen).
    pub(crate) pages_scanned: u32,
}

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
