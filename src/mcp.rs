//! The MCP tools. Each tool is thin: arguments → one call on an actor handle → result. Errors
//! become tool results with `isError: true` whose text says what was wrong and what to do.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Json;
use rmcp::model::{
    ContentBlock, Implementation, IntoContents, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};

use crate::access::{AccessPolicy, AccessProfile};
use crate::actors::delivery::{DeliveryKind, TrackingStatus};
use crate::actors::switchboard::Control;
use crate::error::{CallError, ErrorClass};
use crate::operations::Operations;
use crate::sunco::endpoints::{ConversationFilter, Endpoint};
use crate::sunco::ids::is_resource_id;
use crate::sunco::paging::{MESSAGE_PAGE_SIZE, Page};
use crate::sunco::wire::{
    Author, ConversationCreate, ConversationResponse, ConversationType, Destination, Integration,
    IntegrationListResponse, IntegrationResponse, MessageListResponse, MessagePost, Meta,
    ParticipantRef, UserCreate, UserResponse, UserUpdate, Webhook,
};

pub mod args;
pub mod content;
pub mod cursor;
pub mod schema;
pub mod types;

use args::Parameters;
use types::*;

/// What the server tells a model about working with it.
pub const INSTRUCTIONS: &str = "\
Tools for Zendesk Messaging (Sunshine Conversations): users, conversations, messages, \
switchboard routing between bots and human agents, channels, and delivery tracking.

Workflow:
1. Users first: create_user (with your externalId) before creating conversations for them; \
get_user accepts the id or the externalId.
2. Conversations are always found through a user: list_conversations needs userId or \
userExternalId (the API has no app-wide conversation list).
3. Send with send_message; content is the API's content object (text, image, file, carousel, \
list, location, form, template). It is checked before sending, and errors name the field.
4. Before routing, call get_switchboard_status (who controls the conversation, what `next` \
is, the valid targets) and then pass_control / offer_control. An invalid target is refused \
with the list of valid ones and nothing is changed.
5. Delivery is asynchronous: a send succeeds when the API stores the message; whether the \
channel delivered it arrives later by webhook. Read get_delivery_status or \
list_delivery_failures instead of polling or resending. Both carry `tracking`: when its \
status is off (no webhook secret) or waiting (no event yet), silence proves nothing; confirm \
with list_messages or the user, and tell the operator that tracking is off.
6. Give every send_message an idempotencyKey (unique per message you mean to send): calling \
again with the same key never sends twice. An error of class outcome_unknown means a write may \
have happened: repeat it with the same key (the server checks first), or check list_messages.
7. Back off when told: errors carry retryAfterSeconds for rate limits and busy periods.";

/// The MCP server: the tools over the actor handles. One is made per MCP session.
#[derive(Clone)]
pub struct ZendeskMcp {
    ops: Arc<Operations>,
    access: Arc<AccessPolicy>,
    /// Built once per process: every session and stateless request shares it.
    tool_router: &'static ToolRouter<Self>,
    /// The lowest level of log notifications the client asked for (none until it asks).
    log_level: Arc<std::sync::Mutex<Option<u8>>>,
}

/// MCP log levels in order of severity (`logging/setLevel`).
const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The rank of a level, by its wire name.
fn level_rank(level: &impl serde::Serialize) -> Option<u8> {
    let name = serde_json::to_value(level).ok()?;
    LOG_LEVELS.iter().position(|l| name == *l).map(|p| p as u8)
}

/// A tool failure, shown to the model as JSON with `error`, `message` and facts to act on.
pub struct ToolError(pub CallError);

impl From<CallError> for ToolError {
    fn from(e: CallError) -> Self {
        ToolError(e)
    }
}

tokio::task_local! {
    /// The class of the error a tool call ended with, noted where the error becomes the
    /// result's text, so the call's metrics and audit record take it from the error itself.
    static CALL_ERROR: std::cell::Cell<Option<ErrorClass>>;
}

/// Notes the class of the current tool call's error (nothing outside a call).
fn note_error(class: ErrorClass) {
    let _ = CALL_ERROR.try_with(|c| c.set(Some(class)));
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        note_error(self.0.class());
        vec![ContentBlock::text(self.0.to_json().to_string())]
    }
}

/// Checks an id a path segment will carry: non-empty, no control characters, bounded.
fn id_arg(field: &str, value: &str) -> Result<String, CallError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
        return Err(CallError::invalid(
            field,
            "must be a non-empty id of at most 256 characters",
        ));
    }
    Ok(v.to_owned())
}

/// Checks a record id (24 hex characters), such as a conversation or message id.
fn record_id(field: &str, value: &str) -> Result<String, CallError> {
    let v = value.trim();
    if !is_resource_id(v) {
        return Err(CallError::invalid(
            field,
            format!("{v:?} is not an id: ids are 24 hexadecimal characters"),
        ));
    }
    Ok(v.to_owned())
}

fn page_size(field: &str, limit: Option<u32>, max: u32) -> Result<Option<u32>, CallError> {
    match limit {
        Some(n) if n == 0 || n > max => Err(CallError::invalid(
            field,
            format!("must be from 1 to {max}"),
        )),
        other => Ok(other),
    }
}

/// The cursor of the page after this one of a list that pages forward, if there is one.
fn forward_cursor(list: &str, meta: &Meta, last_id: Option<&str>) -> Option<String> {
    if !meta.has_more {
        return None;
    }
    let at = meta.after_cursor.as_deref().or(last_id)?;
    Some(cursor::encode(list, at))
}

/// An integration without its secrets: only fields known to be safe are copied.
fn integration_view(i: Integration) -> IntegrationView {
    let webhooks = i
        .extra
        .get("webhooks")
        .and_then(|w| serde_json::from_value::<Vec<Webhook>>(w.clone()).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|w| WebhookView {
            id: w.id,
            target: w.target,
            triggers: w.triggers,
        })
        .collect();
    IntegrationView {
        id: i.id,
        kind: i.kind,
        status: i.status,
        display_name: i.display_name,
        webhooks,
    }
}

#[tool_router]
impl ZendeskMcp {
    /// One per MCP session (and per request of the stateless protocol), so it must be cheap:
    /// the tool table, with every schema, is built once per process and shared, neither
    /// generated nor copied again.
    pub fn new(ops: Arc<Operations>, access: Arc<AccessPolicy>) -> Self {
        static ROUTER: std::sync::OnceLock<ToolRouter<ZendeskMcp>> = std::sync::OnceLock::new();
        Self {
            ops,
            access,
            tool_router: ROUTER.get_or_init(Self::portable_router),
            log_level: Default::default(),
        }
    }

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

    #[tool(
        description = "Create a user with your system's externalId (unique in the app), optional profile (givenName, surname, email, avatarUrl, locale) and metadata. Create users before conversations for them. Not idempotent: a second call with the same externalId fails with a conflict.",
        annotations(
            title = "Create a user",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn create_user(
        &self,
        Parameters(a): Parameters<CreateUserArgs>,
    ) -> Result<Json<UserOut>, ToolError> {
        let external_id = id_arg("externalId", &a.external_id)?;
        content::check_metadata("metadata", &a.metadata)?;
        content::check_timestamp("signedUpAt", &a.signed_up_at)?;
        let body = UserCreate {
            external_id: Some(external_id),
            profile: a.profile,
            metadata: a.metadata,
            signed_up_at: a.signed_up_at,
            ..Default::default()
        };
        let answer: UserResponse = self
            .ops
            .actors
            .dispatcher
            .call_json(&Endpoint::CreateUser(body))
            .await?;
        Ok(Json(UserOut { user: answer.user }))
    }

    #[tool(
        description = "Get a user by Sunshine Conversations id or by externalId (the id is tried first): profile, identities, metadata.",
        annotations(
            title = "Get a user",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_user(
        &self,
        Parameters(a): Parameters<UserArgs>,
    ) -> Result<Json<UserOut>, ToolError> {
        let user = id_arg("userId", &a.user_id)?;
        let answer: UserResponse = self
            .ops
            .actors
            .dispatcher
            .call_json(&Endpoint::GetUser { user })
            .await?;
        Ok(Json(UserOut { user: answer.user }))
    }

    #[tool(
        description = "Update a user's profile, metadata or signedUpAt; fields left out are kept. userId is the id or the externalId. Repeating the same update leaves the same result.",
        annotations(
            title = "Update a user",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn update_user(
        &self,
        Parameters(a): Parameters<UpdateUserArgs>,
    ) -> Result<Json<UserOut>, ToolError> {
        let user = id_arg("userId", &a.user_id)?;
        content::check_metadata("metadata", &a.metadata)?;
        content::check_timestamp("signedUpAt", &a.signed_up_at)?;
        if a.profile.is_none() && a.metadata.is_none() && a.signed_up_at.is_none() {
            return Err(CallError::invalid(
                "profile",
                "nothing to update: give profile, metadata or signedUpAt",
            )
            .into());
        }
        let body = UserUpdate {
            profile: a.profile,
            metadata: a.metadata,
            signed_up_at: a.signed_up_at,
            ..Default::default()
        };
        let answer: UserResponse = self
            .ops
            .actors
            .dispatcher
            .call_json(&Endpoint::UpdateUser { user, body })
            .await?;
        Ok(Json(UserOut { user: answer.user }))
    }

    #[tool(
        description = "The app's switchboard and every switchboard integration it routes between (bots, agent workspaces): names, types, which is the default, and each one's `next`. One call gives the routing picture; it also refreshes the server's cache.",
        annotations(
            title = "List switchboards",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn list_switchboards(
        &self,
        Parameters(_): Parameters<NoArgs>,
    ) -> Result<Json<SwitchboardList>, ToolError> {
        let picture = self.ops.actors.switchboard.picture(true).await?;
        let switchboards = picture
            .switchboard
            .clone()
            .map(|s| SwitchboardView {
                switchboard: s,
                switchboard_integrations: picture.switchboard_integrations.clone(),
            })
            .into_iter()
            .collect();
        Ok(Json(SwitchboardList { switchboards }))
    }

    #[tool(
        description = "Who controls a conversation now: the active switchboard integration, the pending one (offered control), where `next` leads, whether the switchboard is enabled, and every valid target. Check it before pass_control.",
        annotations(
            title = "Get switchboard status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_switchboard_status(
        &self,
        Parameters(a): Parameters<ConversationArgs>,
    ) -> Result<Json<crate::actors::switchboard::SwitchboardStatus>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        Ok(Json(self.ops.switchboard_status(&conversation_id).await?))
    }

    #[tool(
        description = "Hand a conversation to another switchboard integration, e.g. from the bot to human agents. The target (switchboardIntegration) is an id, a name, an integrationType held by exactly one integration, or `next`. It is checked first: an invalid target is refused with the list of valid targets and nothing changes. Returns who controls the conversation afterwards.",
        annotations(
            title = "Pass control",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn pass_control(
        &self,
        Parameters(a): Parameters<ControlTargetArgs>,
    ) -> Result<Json<ControlOut>, ToolError> {
        let target = id_arg("switchboardIntegration", &a.switchboard_integration)?;
        self.control(Control::Pass(target), &a.conversation_id, a.metadata)
            .await
    }

    #[tool(
        description = "Offer control of a conversation to another switchboard integration, which takes it with accept_control. The target is checked like pass_control's and must not be the integration already in control.",
        annotations(
            title = "Offer control",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn offer_control(
        &self,
        Parameters(a): Parameters<ControlTargetArgs>,
    ) -> Result<Json<ControlOut>, ToolError> {
        let target = id_arg("switchboardIntegration", &a.switchboard_integration)?;
        self.control(Control::Offer(target), &a.conversation_id, a.metadata)
            .await
    }

    #[tool(
        description = "Accept a pending offer of control: the pending switchboard integration becomes active. Fails when nothing is pending (see get_switchboard_status).",
        annotations(
            title = "Accept control",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn accept_control(
        &self,
        Parameters(a): Parameters<ControlArgs>,
    ) -> Result<Json<ControlOut>, ToolError> {
        self.control(Control::Accept, &a.conversation_id, a.metadata)
            .await
    }

    #[tool(
        description = "Release control of a conversation: the active switchboard integration gives it up and the conversation returns to the switchboard's default integration.",
        annotations(
            title = "Release control",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn release_control(
        &self,
        Parameters(a): Parameters<ControlArgs>,
    ) -> Result<Json<ControlOut>, ToolError> {
        self.control(Control::Release, &a.conversation_id, a.metadata)
            .await
    }

    #[tool(
        description = "List the app's channel integrations (web, ios, android, messenger, whatsapp, custom, ...), optionally only some types. Channel secrets are never shown. Pages: pass nextCursor back as cursor while hasMore is true.",
        annotations(
            title = "List integrations",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn list_integrations(
        &self,
        Parameters(a): Parameters<ListIntegrationsArgs>,
    ) -> Result<Json<IntegrationPage>, ToolError> {
        for (i, t) in a.types.iter().enumerate() {
            if t.is_empty()
                || t.len() > 64
                || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == ':')
            {
                return Err(CallError::invalid(
                    format!("types[{i}]"),
                    "must be an integration type such as whatsapp or messenger",
                )
                .into());
            }
        }
        let mut page = match &a.cursor {
            Some(c) => Page::after(cursor::decode("list_integrations", c)?),
            None => Page::default(),
        };
        page.size = page_size("limit", a.limit, 100)?;
        let answer: IntegrationListResponse = self
            .ops
            .actors
            .dispatcher
            .call_json(&Endpoint::ListIntegrations {
                types: a.types,
                page,
            })
            .await?;
        let last = answer.integrations.last().map(|i| i.id.as_str());
        let next_cursor = forward_cursor("list_integrations", &answer.meta, last);
        Ok(Json(IntegrationPage {
            has_more: next_cursor.is_some(),
            integrations: answer
                .integrations
                .into_iter()
                .map(integration_view)
                .collect(),
            next_cursor,
        }))
    }

    #[tool(
        description = "Get one channel integration by id: type, status, display name (and, for custom integrations, where their webhooks point). Channel secrets are never shown.",
        annotations(
            title = "Get an integration",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_integration(
        &self,
        Parameters(a): Parameters<IntegrationArgs>,
    ) -> Result<Json<IntegrationOut>, ToolError> {
        let integration_id = record_id("integrationId", &a.integration_id)?;
        let answer: IntegrationResponse = self
            .ops
            .actors
            .dispatcher
            .call_json(&Endpoint::GetIntegration { integration_id })
            .await?;
        Ok(Json(IntegrationOut {
            integration: integration_view(answer.integration),
        }))
    }

    #[tool(
        description = "What the webhooks said about one message: sent to the channel, delivered to the user, or failed (with the channel's error code and reason). Answers from what the server has received; it never polls the API. noEventsYet means no report has arrived: wait, do not resend. Read tracking first: when its status is off, no report can arrive (state untracked).",
        annotations(
            title = "Get delivery status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_delivery_status(
        &self,
        Parameters(a): Parameters<DeliveryStatusArgs>,
    ) -> Result<Json<DeliveryStatusOut>, ToolError> {
        let message_id = record_id("messageId", &a.message_id)?;
        let record = self.ops.actors.tracker.status(&message_id).await?;
        let (conversation_id, events) = match record {
            Some(r) => (Some(r.conversation_id), r.events),
            None => (None, vec![]),
        };
        let tracking = self.ops.actors.tracker.tracking();
        let has = |kind| events.iter().any(|e| e.kind == kind);
        let failure = events
            .iter()
            .rev()
            .find(|e| e.kind == DeliveryKind::Failure)
            .cloned();
        let state = if failure.is_some() {
            DeliveryState::Failed
        } else if has(DeliveryKind::User) {
            DeliveryState::DeliveredToUser
        } else if has(DeliveryKind::Channel) {
            DeliveryState::SentToChannel
        } else if tracking.status == TrackingStatus::Off {
            DeliveryState::Untracked
        } else {
            DeliveryState::NoEventsYet
        };
        Ok(Json(DeliveryStatusOut {
            message_id,
            conversation_id: conversation_id.flatten(),
            state,
            failure,
            events,
            tracking,
        }))
    }

    #[tool(
        description = "Recent delivery failures reported by webhook, newest first: message, conversation, channel, error code and reason. For one conversation or app-wide. Answers from what the server has received; it never polls the API. An empty list means none only when tracking.status is on.",
        annotations(
            title = "List delivery failures",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_delivery_failures(
        &self,
        Parameters(a): Parameters<DeliveryFailuresArgs>,
    ) -> Result<Json<DeliveryFailures>, ToolError> {
        let conversation_id = a
            .conversation_id
            .as_deref()
            .map(|c| record_id("conversationId", c))
            .transpose()?;
        let limit = match a.limit {
            None => 50,
            Some(n @ 1..=200) => n as usize,
            Some(_) => return Err(CallError::invalid("limit", "must be from 1 to 200").into()),
        };
        let failures = self
            .ops
            .actors
            .tracker
            .failures(conversation_id.as_deref(), limit)
            .await?;
        Ok(Json(DeliveryFailures {
            failures,
            tracking: self.ops.actors.tracker.tracking(),
        }))
    }
}

/// A tool error as a `tools/call` result: `isError`, the JSON as text, no structured content.
fn error_result(error: &serde_json::Value) -> rmcp::model::CallToolResponse {
    let mut r = rmcp::model::CallToolResult::error(vec![ContentBlock::text(error.to_string())]);
    r.structured_content = None;
    r.into()
}

impl ZendeskMcp {
    /// The tool table with every input and output schema made portable ([`schema::portable`]).
    fn portable_router() -> ToolRouter<Self> {
        let mut router = Self::tool_router();
        for route in router.map.values_mut() {
            let input = schema::portable(&route.attr.input_schema, schema::Direction::Input);
            route.attr.input_schema = Arc::new(input);
            if let Some(output) = &route.attr.output_schema {
                let output = schema::portable(output, schema::Direction::Output);
                route.attr.output_schema = Some(Arc::new(output));
            }
        }
        router
    }

    /// The names of every tool, for checking configured tool sets.
    pub fn tool_names() -> std::collections::BTreeSet<String> {
        Self::tool_router()
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// The caller's profile, as the `/mcp` route authenticated it (none over stdio or when no
    /// tokens are configured).
    fn profile(context: &RequestContext<RoleServer>) -> Option<Arc<AccessProfile>> {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Arc<AccessProfile>>().cloned())
    }

    /// Whether the caller may see and call `tool`.
    fn permits(&self, profile: Option<&AccessProfile>, tool: &rmcp::model::Tool) -> bool {
        let read_only = tool
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            .unwrap_or(false);
        self.access.allows(profile, &tool.name, read_only)
    }

    /// Sends a log notification to the client if it asked for this level or a lower one.
    #[allow(deprecated)] // MCP logging is deprecated by SEP-2577; 2025-11-25 clients still use it.
    async fn log(&self, ctx: &RequestContext<RoleServer>, level: &str, data: serde_json::Value) {
        let min = self.log_level.lock().ok().and_then(|l| *l);
        let Some(rank) = LOG_LEVELS.iter().position(|l| *l == level) else {
            return;
        };
        if min.is_none_or(|m| (rank as u8) < m) {
            return;
        }
        let Ok(level) = serde_json::from_value::<rmcp::model::LoggingLevel>(level.into()) else {
            return;
        };
        let note = rmcp::model::LoggingMessageNotificationParam::new(level, data)
            .with_logger("zendesk-messaging-mcp");
        let _ = ctx.peer.notify_logging_message(note).await;
    }

    async fn control(
        &self,
        control: Control,
        conversation_id: &str,
        metadata: Option<crate::sunco::wire::Metadata>,
    ) -> Result<Json<ControlOut>, ToolError> {
        let conversation_id = record_id("conversationId", conversation_id)?;
        content::check_metadata("metadata", &metadata)?;
        let action = control.action();
        let status = self
            .ops
            .control(&conversation_id, control, metadata)
            .await?;
        Ok(Json(ControlOut { action, status }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ZendeskMcp {
    /// Every tool call: a span (child of the caller's `traceparent`, from `_meta` or the HTTP
    /// headers), the call and duration metrics, and for writes an audit record.
    /// Only the tools the caller's profile grants are listed.
    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, rmcp::ErrorData> {
        let profile = Self::profile(&context);
        let tools = self
            .tool_router
            .list_all()
            .into_iter()
            .filter(|t| self.permits(profile.as_deref(), t))
            .collect();
        Ok(rmcp::model::ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, rmcp::ErrorData> {
        let tool = request.name.to_string();
        let profile = Self::profile(&context);
        let profile_name = profile
            .as_ref()
            .map_or("default", |p| p.name.as_str())
            .to_owned();
        if let Some(t) = self.tool_router.get(&tool)
            && !self.permits(profile.as_deref(), t)
        {
            let refused = CallError::Forbidden {
                tool: tool.clone(),
                profile: profile_name.clone(),
            };
            tracing::warn!(target: "audit", tool = %tool, profile = %profile_name, outcome = refused.class().as_str(), "refused");
            return Ok(error_result(&refused.to_json()));
        }
        // Arguments as clients send them, brought to the schema's form (or refused, naming the
        // field) before the tool decodes them.
        let mut request = request;
        let conformed = match self.tool_router.get(&tool) {
            Some(t) => {
                let mut arguments = request.arguments.take().unwrap_or_default();
                let result = args::conform(&mut arguments, &t.input_schema);
                request.arguments = Some(arguments);
                result
            }
            None => Ok(()),
        };
        let conversation_id = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("conversationId"))
            .and_then(|v| v.as_str())
            .filter(|c| is_resource_id(c))
            .map(str::to_owned);
        // The POST /mcp that carried the call is its parent, even when rmcp runs the call in a
        // session's task (none over stdio); a `traceparent` in the call's `_meta` overrides it.
        let request_span = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<crate::telemetry::RequestSpan>())
            .map(|s| s.0.clone());
        macro_rules! tool_span {
            ($($parent:tt)*) => {
                tracing::info_span!(
                    $($parent)*
                    "mcp.tool",
                    otel.name = %format!("tools/call {tool}"),
                    otel.kind = "server",
                    mcp.method.name = "tools/call",
                    gen_ai.operation.name = "execute_tool",
                    gen_ai.tool.name = %tool,
                    sunco.conversation.id = conversation_id.as_deref(),
                    error.type = tracing::field::Empty,
                )
            };
        }
        let span = match &request_span {
            Some(parent) => tool_span!(parent: parent,),
            None => tool_span!(),
        };
        let from_meta = request
            .meta
            .as_ref()
            .and_then(|m| {
                m.get_traceparent()
                    .map(|t| (t.to_owned(), m.get_tracestate().map(str::to_owned)))
            })
            .or_else(|| {
                context.meta.get_traceparent().map(|t| {
                    (
                        t.to_owned(),
                        context.meta.get_tracestate().map(str::to_owned),
                    )
                })
            });
        // A header `traceparent` already parents the request span, and so this one.
        if let Some((tp, ts)) = from_meta {
            crate::telemetry::adopt_remote_parent(&span, &tp, ts.as_deref());
        }
        let started = std::time::Instant::now();
        let (result, error) = match conformed {
            Err(e) => (Ok(error_result(&e.to_json())), Some(e.class())),
            Ok(()) => {
                let tcc = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
                let call =
                    tracing::Instrument::instrument(self.tool_router.call(tcc), span.clone());
                let noted = std::cell::Cell::new(None);
                let (result, noted) = CALL_ERROR
                    .scope(noted, async {
                        let result = call.await;
                        (result, CALL_ERROR.with(|c| c.get()))
                    })
                    .await;
                match result {
                    // An argument the tool's type refused: a tool error naming the field.
                    Err(e) => match args::argument_error(&e) {
                        Some(refused) => {
                            (Ok(error_result(refused)), Some(ErrorClass::InvalidArgument))
                        }
                        None => (Err(e), None),
                    },
                    ok => (ok, noted),
                }
            }
        };
        // `ok`, the error class, or `protocol_error` for a call answered with a JSON-RPC error.
        let outcome = match (&result, error) {
            (Ok(_), None) => "ok",
            (Ok(_), Some(class)) => class.as_str(),
            (Err(_), _) => "protocol_error",
        };
        if outcome != "ok" {
            span.record("error.type", outcome);
        }
        let attrs = [
            crate::telemetry::kv("tool", tool.clone()),
            crate::telemetry::kv("outcome", outcome),
        ];
        let metrics = &self.ops.actors.metrics;
        metrics.tool_calls.add(1, &attrs);
        metrics
            .tool_duration
            .record(started.elapsed().as_secs_f64(), &attrs);
        // The tools that change something upstream (not read-only by their own annotations)
        // leave an audit record for each call.
        let writes = self
            .tool_router
            .get(&tool)
            .and_then(|t| t.annotations.as_ref()?.read_only_hint)
            == Some(false);
        if writes {
            span.in_scope(|| {
                tracing::info!(
                    target: "audit",
                    tool = %tool,
                    profile = %profile_name,
                    conversation_id = conversation_id.as_deref(),
                    outcome = %outcome,
                    "write"
                );
            });
        }
        result
    }

    #[allow(deprecated)] // see `log`
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), rmcp::ErrorData> {
        let rank = level_rank(&request.level)
            .ok_or_else(|| rmcp::ErrorData::invalid_params("unknown log level", None))?;
        if let Ok(mut l) = self.log_level.lock() {
            *l = Some(rank);
        }
        Ok(())
    }

    #[allow(deprecated)] // logging: see `log`
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        )
        .with_server_info(Implementation::new(
            "zendesk-messaging-mcp",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(INSTRUCTIONS)
    }
}
