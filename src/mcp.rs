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

use crate::access::{AccessPolicy, AccessProfile, CallerRules};
use crate::actors::switchboard::Control;
use crate::error::{CallError, ErrorClass};
use crate::live::Live;
use crate::operations::Operations;
use crate::operations::conversations::ConversationQuery;
use crate::sunco::endpoints::{ConversationFilter, Endpoint};
use crate::sunco::ids::is_resource_id;
use crate::sunco::paging::{MESSAGE_PAGE_SIZE, Page};
use crate::sunco::wire::{
    Author, ConversationCreate, ConversationResponse, ConversationType, Destination, Integration,
    IntegrationListResponse, IntegrationResponse, MessageListResponse, MessagePost, Meta,
    ParticipantRef, UserCreate, UserListResponse, UserResponse, UserUpdate, Webhook,
};

pub mod args;
pub mod content;
pub mod cursor;
pub mod schema;
pub mod types;

mod context;
mod conversations;
mod delivery;
mod integrations;
mod messages;
mod switchboard;
mod users;

use args::Parameters;
use types::*;

/// What the server tells a model about working with it.
pub const INSTRUCTIONS: &str = "\
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
triage_failures walk through both.";

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

/// A tool failure, shown to the model as JSON with `error`, `message` and facts to act on.
pub struct ToolError(pub CallError);

impl From<CallError> for ToolError {
    fn from(e: CallError) -> Self {
        ToolError(e)
    }
}

tokio::task_local! {
    /// The error a tool call ended with, noted where the error becomes the result's text, so
    /// the call's metrics and audit record take it from the error itself (and a dry run's
    /// request becomes the result).
    static CALL_ERROR: std::cell::RefCell<Option<CallError>>;
}

tokio::task_local! {
    /// What applies to the caller of the current tool call, as it was when the call started.
    static CALLER: CallerRules;
}

/// The rules of the current call's caller (the defaults outside a call).
fn caller_rules() -> CallerRules {
    CALLER.try_with(Clone::clone).unwrap_or_default()
}

/// Notes the current tool call's error (nothing outside a call).
fn note_error(e: &CallError) {
    let _ = CALL_ERROR.try_with(|c| *c.borrow_mut() = Some(e.clone()));
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        note_error(&self.0);
        vec![ContentBlock::text(self.0.to_json().to_string())]
    }
}

/// A dry run's answer: `dryRun` and the request that was not sent, as the result's structured
/// content (the write tools' output schemas admit it).
fn dry_run_result(
    request: &crate::sunco::endpoints::PlannedRequest,
) -> rmcp::model::CallToolResponse {
    rmcp::model::CallToolResult::structured(serde_json::json!({"dryRun": true, "request": request}))
        .into()
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
            let writes = read_only_hint(&route.attr) == Some(false);
            if let Some(output) = &route.attr.output_schema {
                let mut output = schema::portable(output, schema::Direction::Output);
                if writes {
                    schema::admit_dry_run(&mut output);
                }
                route.attr.output_schema = Some(Arc::new(output));
            }
        }
        router
    }

    /// Whether `tool` only reads (its `readOnlyHint`); `None` for a tool that does not exist.
    pub fn tool_is_read_only(tool: &str) -> Option<bool> {
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

    /// The caller's profile, as the `/mcp` route authenticated it (none over stdio or when no
    /// tokens are configured).
    fn profile(context: &RequestContext<RoleServer>) -> Option<Arc<AccessProfile>> {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Arc<AccessProfile>>().cloned())
    }

    /// Where the call came from, for the audit records: the peer's IP address, and the
    /// `X-Forwarded-For` a proxy in front added (as given: only a proxy of the operator's own
    /// makes it trustworthy).
    fn caller_address(context: &RequestContext<RoleServer>) -> (Option<String>, Option<String>) {
        let Some(parts) = context.extensions.get::<axum::http::request::Parts>() else {
            return (None, None);
        };
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect());
        (peer, forwarded)
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
        let profile = Self::profile(&context);
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
        let profile = Self::profile(&context);
        let arguments = request.arguments.unwrap_or_default();
        self.prompt(profile.as_deref(), &request.name, &arguments)
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, rmcp::ErrorData> {
        let profile = Self::profile(&context);
        let mut listed = rmcp::model::ListResourcesResult::with_all_items(
            self.resources_for(profile.as_deref()),
        );
        listed.ttl_ms = Some(context::LIST_TTL_MS);
        listed.cache_scope = Some(self.list_scope());
        Ok(listed)
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, rmcp::ErrorData> {
        let profile = Self::profile(&context);
        self.read(profile.as_deref(), &request.uri)
            .await
            .map(Into::into)
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
        let caller = Self::caller_address(&context);
        // The settings this call runs under, to its end, whatever a reload brings meanwhile.
        let access = self.access();
        let rules = access.rules(profile.as_deref());
        if let Some(t) = self.tool_router.get(&tool)
            && !permitted(&access, profile.as_deref(), t)
        {
            let refused = CallError::Forbidden {
                tool: tool.clone(),
                profile: profile_name.clone(),
            };
            let oauth = profile.as_ref().and_then(|p| p.oauth.as_ref());
            let (peer, forwarded_for) = &caller;
            tracing::warn!(
                target: "audit",
                tool = %tool,
                profile = %profile_name,
                outcome = refused.class().as_str(),
                subject = oauth.and_then(|o| o.subject.as_deref()),
                client_id = oauth.and_then(|o| o.client_id.as_deref()),
                client_address = peer.as_deref(),
                forwarded_for = forwarded_for.as_deref(),
                "refused"
            );
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
        // An OAuth caller: who, and through which client (never the token).
        let oauth = profile.as_ref().and_then(|p| p.oauth.as_ref());
        let subject = oauth.and_then(|o| o.subject.as_deref());
        let client_id = oauth.and_then(|o| o.client_id.as_deref());
        // A send over another integration's control is audited as such.
        let override_control = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("overrideControl"))
            .and_then(|v| v.as_bool())
            .filter(|o| *o);
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
                    enduser.id = subject,
                    oauth.client_id = client_id,
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
                let noted = std::cell::RefCell::new(None);
                let call = async {
                    let result = call.await;
                    (result, CALL_ERROR.with(|c| c.borrow_mut().take()))
                };
                let call = CALLER.scope(rules.clone(), call);
                let (result, noted) = if rules.dry_run {
                    CALL_ERROR
                        .scope(noted, crate::actors::dispatcher::dry_run(call))
                        .await
                } else {
                    CALL_ERROR.scope(noted, call).await
                };
                match (result, noted) {
                    // An argument the tool's type refused: a tool error naming the field.
                    (Err(e), _) => match args::argument_error(&e) {
                        Some(refused) => {
                            (Ok(error_result(refused)), Some(ErrorClass::InvalidArgument))
                        }
                        None => (Err(e), None),
                    },
                    // The write a dry run stopped before: its answer, not an error.
                    (Ok(_), Some(CallError::DryRun { request })) => {
                        (Ok(dry_run_result(&request)), Some(ErrorClass::DryRun))
                    }
                    (ok, noted) => (ok, noted.map(|e| e.class())),
                }
            }
        };
        // `ok`, `dry_run`, the error class, or `protocol_error` for a call answered with a
        // JSON-RPC error.
        let outcome = match (&result, error) {
            (Ok(_), None) => "ok",
            (Ok(_), Some(class)) => class.as_str(),
            (Err(_), _) => "protocol_error",
        };
        if outcome != "ok" && outcome != "dry_run" {
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
        let writes = self.tool_router.get(&tool).and_then(read_only_hint) == Some(false);
        if writes {
            // A keyed send answered from its record wrote nothing this time.
            let replayed = result.as_ref().ok().and_then(|r| match r {
                rmcp::model::CallToolResponse::Complete(done) => {
                    done.structured_content.as_ref()?.get("replayed")?.as_bool()
                }
                _ => None,
            });
            let (peer, forwarded_for) = caller;
            span.in_scope(|| {
                tracing::info!(
                    target: "audit",
                    tool = %tool,
                    profile = %profile_name,
                    conversation_id = conversation_id.as_deref(),
                    outcome = %outcome,
                    replayed,
                    override_control,
                    dry_run = rules.dry_run,
                    subject,
                    client_id,
                    client_address = peer.as_deref(),
                    forwarded_for = forwarded_for.as_deref(),
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
