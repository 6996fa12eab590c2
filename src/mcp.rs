//! The MCP tools. Each tool is thin: arguments → one call on an actor handle → result. Errors
//! become tool results with `isError: true` whose text says what was wrong and what to do.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool_handler};

use crate::access::{AccessPolicy, AccessProfile};
use crate::error::CallError;
use crate::live::Live;
use crate::operations::Operations;
use crate::sunco::ids::is_resource_id;
use crate::sunco::wire::Meta;

pub(crate) mod args;
pub mod content;
pub mod cursor;
pub mod schema;
pub(crate) mod types;

mod bound;
mod claims;
mod context;
mod conversations;
mod delivery;
mod entry;
mod integrations;
mod messages;
mod switchboard;
mod users;

/// What the server tells a model about working with it.
pub(crate) const INSTRUCTIONS: &str = "\
Tools for Zendesk Messaging (Sunshine Conversations): users, conversations, messages, \
switchboard routing between bots and human agents, channels, and delivery tracking.

Workflow:
1. Users first: create_user (with your externalId) before creating conversations for them; \
get_user accepts the id or the externalId; find_users finds them by email.
2. Conversations are found through a user (list_conversations with userId or userExternalId), \
or, without one, among those the webhooks told the server of (source index: who controls \
each, whether it awaits a reply; indexReachesBack says how far back it goes).
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
7. Back off when told: errors carry retryAfterSeconds for rate limits and busy periods.
8. Never answer over a human: once control passed to an agent, stop sending. A send refused \
with not_in_control names who controls the conversation; do not retry it. A result with \
dryRun: true was not sent (the server runs in dry-run mode): `request` shows what would have \
been. Failures carry nextStep: what to do next. The prompts handoff_to_agent and \
triage_failures walk through both.
9. Answering customers as one of many agents: claim_conversation (waitSeconds to wait for \
work) hands you one waiting conversation with its unanswered messages; answer with \
send_message {claim}. superseded means the customer wrote again: read `arrived` and answer \
the whole under the same claim. claim_lost means another agent has it now: claim again. Renew \
long work with claim_conversation {claim}; release_conversation when you will not answer.
10. Answers are bounded in size. One that would be longer carries `trimmed`: a page then holds fewer items (follow nextCursor for the rest), and a string cut short ends in …[cut …], which says where it is whole.";

/// How long a client may keep `tools/list` (its `ttlMs`).
const TOOLS_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// The MCP server: the tools over the actor handles. One is made per MCP session.
#[derive(Clone)]
pub struct ZendeskMcp {
    ops: Arc<Operations>,
    /// The settings in force (access rules, what the server tells clients), reloadable.
    live: Arc<Live>,
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

/// [`id_arg`] for an optional argument (a filter): `None` when not given.
fn opt_id_arg(field: &str, value: &Option<String>) -> Result<Option<String>, CallError> {
    value.as_deref().map(|v| id_arg(field, v)).transpose()
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

impl ZendeskMcp {
    /// One per MCP session (and per request of the stateless protocol), so it must be cheap:
    /// the tool table, with every schema, is built once per process and shared, neither
    /// generated nor copied again.
    pub fn new(ops: Arc<Operations>, live: Arc<Live>) -> Self {
        Self {
            ops,
            live,
            tool_router: Self::shared_router(),
            log_level: Default::default(),
        }
    }

    /// The process's one tool table ([`Self::portable_router`]), built on first use.
    fn shared_router() -> &'static ToolRouter<Self> {
        static ROUTER: std::sync::OnceLock<ToolRouter<ZendeskMcp>> = std::sync::OnceLock::new();
        ROUTER.get_or_init(Self::portable_router)
    }

    /// Every tool, each family's router combined.
    fn tool_router() -> ToolRouter<Self> {
        Self::conversation_tools()
            + Self::message_tools()
            + Self::user_tools()
            + Self::switchboard_tools()
            + Self::integration_tools()
            + Self::delivery_tools()
            + Self::claim_tools()
    }
}

/// A tool's own `readOnlyHint`.
fn read_only_hint(tool: &rmcp::model::Tool) -> Option<bool> {
    tool.annotations.as_ref()?.read_only_hint
}

/// Whether `access` lets a caller with `profile` see and call `tool` (a tool without the hint
/// counts as one that writes).
fn permitted(
    access: &AccessPolicy,
    profile: Option<&AccessProfile>,
    tool: &rmcp::model::Tool,
) -> bool {
    access.allows(profile, &tool.name, read_only_hint(tool).unwrap_or(false))
}

impl ZendeskMcp {
    /// The tool table with every input and output schema made portable ([`schema::portable`]).
    fn portable_router() -> ToolRouter<Self> {
        let mut router = Self::tool_router();
        for route in router.map.values_mut() {
            let input = schema::portable(&route.attr.input_schema, schema::Direction::Input);
            route.attr.input_schema = Arc::new(input);
            let writes = read_only_hint(&route.attr) == Some(false);
            if let Some(output) = &route.attr.output_schema {
                let mut output = schema::portable(output, schema::Direction::Output);
                schema::admit_trimmed(&mut output);
                if writes {
                    schema::admit_dry_run(&mut output);
                }
                route.attr.output_schema = Some(Arc::new(output));
            }
        }
        router
    }

    /// Whether `tool` only reads (its `readOnlyHint`); `None` for a tool that does not exist.
    pub(crate) fn tool_is_read_only(tool: &str) -> Option<bool> {
        let t = Self::shared_router().get(tool)?;
        Some(read_only_hint(t).unwrap_or(false))
    }

    /// The names of every tool, for checking configured tool sets.
    pub fn tool_names() -> std::collections::BTreeSet<String> {
        Self::tool_router()
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// The access rules in force now.
    fn access(&self) -> Arc<AccessPolicy> {
        self.live.get().access.clone()
    }

    /// Whether the caller may see and call `tool`, under the access rules in force now.
    fn permits(&self, profile: Option<&AccessProfile>, tool: &rmcp::model::Tool) -> bool {
        permitted(&self.access(), profile, tool)
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
        let profile = entry::profile(&context);
        let tools = self
            .tool_router
            .list_all()
            .into_iter()
            .filter(|t| self.permits(profile.as_deref(), t))
            .collect();
        // Caching hints (2026-07-28): the list changes only with a new release or new access
        // rules; with tokens it depends on the caller's profile, so only the caller may keep it.
        let mut listed = rmcp::model::ListToolsResult::with_all_items(tools);
        listed.ttl_ms = Some(TOOLS_TTL.as_millis() as u64);
        listed.cache_scope = Some(self.list_scope());
        Ok(listed)
    }

    async fn list_prompts(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, rmcp::ErrorData> {
        let profile = entry::profile(&context);
        let mut listed =
            rmcp::model::ListPromptsResult::with_all_items(self.prompts_for(profile.as_deref()));
        listed.ttl_ms = Some(context::LIST_TTL_MS);
        listed.cache_scope = Some(self.list_scope());
        Ok(listed)
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, rmcp::ErrorData> {
        let profile = entry::profile(&context);
        let arguments = request.arguments.unwrap_or_default();
        self.prompt(profile.as_deref(), &request.name, &arguments)
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, rmcp::ErrorData> {
        let profile = entry::profile(&context);
        let mut listed = rmcp::model::ListResourcesResult::with_all_items(
            self.resources_for(profile.as_deref()),
        );
        listed.ttl_ms = Some(context::LIST_TTL_MS);
        listed.cache_scope = Some(self.list_scope());
        Ok(listed)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, rmcp::ErrorData> {
        let profile = entry::profile(&context);
        Ok(rmcp::model::ListResourceTemplatesResult::with_all_items(
            self.templates_for(profile.as_deref()),
        ))
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, rmcp::ErrorData> {
        let profile = entry::profile(&context);
        let call = self.request_call(&context);
        self.read(&call, profile.as_deref(), &request.uri)
            .await
            .map(Into::into)
    }

    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, rmcp::ErrorData> {
        self.enter(request, context).await
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
        let settings = self.live.get();
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_prompts()
                .enable_resources()
                .enable_logging()
                .build(),
        )
        .with_server_info({
            let mut info = Implementation::new(&settings.server_name, env!("CARGO_PKG_VERSION"));
            info.description.clone_from(&settings.server_description);
            info
        })
        .with_instructions(match &settings.instructions {
            Some(more) => format!("{INSTRUCTIONS}\n\nFrom the operator:\n{more}"),
            None => INSTRUCTIONS.to_owned(),
        })
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        // A session is told when a settings reload may have changed its tool list.
        self.live.register(context.peer);
    }
}
