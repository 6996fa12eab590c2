//! Where every tool call enters and leaves. Entering: who calls (the profile the `/mcp` route
//! authenticated, an OAuth subject and client, the peer's address), whether the profile may call
//! the tool, the arguments brought to the schema's form, the span, and the [`Call`] the tool
//! takes. Leaving: the error's class read from the result, a dry run's answer, the call metrics
//! and, for a tool that writes, the audit record.

use std::sync::Arc;

use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, IntoContents,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::Value;
use tracing::Instrument;

use super::{ZendeskMcp, args, permitted, read_only_hint};
use crate::access::AccessProfile;
use crate::call::{Call, Caller, Mode};
use crate::error::{CallError, ErrorClass};
use crate::sunco::ids::is_resource_id;

/// A tool failure, shown to the model as JSON with `error`, `message` and facts to act on. The
/// call's exit reads the class back from that JSON ([`carried_error`]).
pub(crate) struct ToolError(pub CallError);

impl From<CallError> for ToolError {
    fn from(e: CallError) -> Self {
        ToolError(e)
    }
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.0.to_json().to_string())]
    }
}

/// A tool takes its call as an argument: the value [`ZendeskMcp::enter`] put in the request's
/// context for it.
impl<S> FromContextPart<ToolCallContext<'_, S>> for Call {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        context
            .request_context
            .extensions
            .get::<Call>()
            .cloned()
            .ok_or_else(|| ErrorData::internal_error("a tool was called outside a call", None))
    }
}

/// A tool error as a `tools/call` result: `isError`, the JSON as text, no structured content.
pub(super) fn error_result(error: &Value) -> CallToolResponse {
    let mut r = CallToolResult::error(vec![ContentBlock::text(error.to_string())]);
    r.structured_content = None;
    r.into()
}

/// The error a tool's result carries, as [`ToolError`] wrote it: its class and its JSON.
fn carried_error(response: &CallToolResponse) -> Option<(ErrorClass, Value)> {
    let CallToolResponse::Complete(done) = response else {
        return None;
    };
    if done.is_error != Some(true) {
        return None;
    }
    let body: Value = serde_json::from_str(&done.content.first()?.as_text()?.text).ok()?;
    let class = ErrorClass::from_wire(body.get("error")?.as_str()?)?;
    Some((class, body))
}

/// A dry run's answer: `dryRun` and the request that was not sent, as the result's structured
/// content (the write tools' output schemas admit it).
fn dry_run_result(request: &Value) -> CallToolResponse {
    CallToolResult::structured(serde_json::json!({"dryRun": true, "request": request})).into()
}

/// The caller's profile, as the `/mcp` route authenticated it (none over stdio or when no
/// tokens are configured).
pub(super) fn profile(context: &RequestContext<RoleServer>) -> Option<Arc<AccessProfile>> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Arc<AccessProfile>>().cloned())
}

/// The `/mcp` turn the request holds (none over stdio).
fn turn(context: &RequestContext<RoleServer>) -> crate::call::Turn {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<crate::call::Turn>().cloned())
        .unwrap_or_default()
}

/// Who calls: the profile, an OAuth caller's subject and client (never the token), the peer's
/// IP address and the `X-Forwarded-For` a proxy in front added (as given: only a proxy of the
/// operator's own makes it trustworthy).
fn caller(profile: Option<&AccessProfile>, context: &RequestContext<RoleServer>) -> Caller {
    let oauth = profile.and_then(|p| p.oauth.as_ref());
    let parts = context.extensions.get::<axum::http::request::Parts>();
    Caller {
        profile: profile.map_or("default", |p| p.name.as_str()).to_owned(),
        subject: oauth.and_then(|o| o.subject.clone()),
        client_id: oauth.and_then(|o| o.client_id.clone()),
        address: parts
            .and_then(|p| {
                p.extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            })
            .map(|c| c.0.ip().to_string()),
        forwarded_for: parts
            .and_then(|p| p.headers.get("x-forwarded-for"))
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    }
}

/// What the audit record and the span say of a call's arguments.
struct Facts {
    conversation_id: Option<String>,
    /// A send over another integration's control is audited as such.
    override_control: Option<bool>,
    /// The tool changes something upstream (not read-only by its own annotations): audited.
    writes: bool,
}

impl Facts {
    fn of(request: &CallToolRequestParams, route: Option<&rmcp::model::Tool>) -> Self {
        let arg = |name: &str| request.arguments.as_ref().and_then(|a| a.get(name));
        Self {
            conversation_id: arg("conversationId")
                .and_then(Value::as_str)
                .filter(|c| is_resource_id(c))
                .map(str::to_owned),
            override_control: arg("overrideControl")
                .and_then(Value::as_bool)
                .filter(|o| *o),
            writes: route.and_then(read_only_hint) == Some(false),
        }
    }
}

/// The call's span: a child of the POST /mcp that carried it (even when rmcp runs the call in a
/// session's task; none over stdio), or of a `traceparent` in the call's `_meta`.
fn span_of(
    tool: &str,
    facts: &Facts,
    caller: &Caller,
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> tracing::Span {
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
                sunco.conversation.id = facts.conversation_id.as_deref(),
                enduser.id = caller.subject.as_deref(),
                oauth.client_id = caller.client_id.as_deref(),
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
            let meta = &context.meta;
            meta.get_traceparent()
                .map(|t| (t.to_owned(), meta.get_tracestate().map(str::to_owned)))
        });
    // A header `traceparent` already parents the request span, and so this one.
    if let Some((tp, ts)) = from_meta {
        crate::telemetry::adopt_remote_parent(&span, &tp, ts.as_deref());
    }
    span
}

/// A call's result and the class of the error it ended with (none for a success).
type Ended = (Result<CallToolResponse, ErrorData>, Option<ErrorClass>);

impl ZendeskMcp {
    /// Every tool call: opened (permission, arguments, span, the [`Call`]), run, closed
    /// (metrics, audit).
    pub(super) async fn enter(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = request.name.to_string();
        let profile = profile(&context);
        let caller = caller(profile.as_deref(), &context);
        // The settings this call runs under, to its end, whatever a reload brings meanwhile.
        let settings = self.live.get();
        let access = settings.access.clone();
        let route = self.tool_router.get(&tool);
        if let Some(t) = route
            && !permitted(&access, profile.as_deref(), t)
        {
            let attrs = [
                crate::telemetry::kv("tool", tool.clone()),
                crate::telemetry::kv("outcome", ErrorClass::Forbidden.as_str()),
            ];
            self.ops.actors.metrics.tool_calls.add(1, &attrs);
            return Ok(refuse(&tool, &caller));
        }
        // Arguments as clients send them, brought to the schema's form (or refused, naming the
        // field) before the tool decodes them.
        let conformed = match route {
            Some(t) => {
                let mut arguments = request.arguments.take().unwrap_or_default();
                let result = args::conform(&mut arguments, &t.input_schema);
                request.arguments = Some(arguments);
                result
            }
            None => Ok(()),
        };
        let facts = Facts::of(&request, route);
        let span = span_of(&tool, &facts, &caller, &request, &context);
        let rules = access.rules(profile.as_deref());
        let progress = (context.meta.get_progress_token())
            .map(|token| crate::call::Progress::new(context.peer.clone(), token));
        let call = Call::new(caller, rules, context.ct.clone(), span)
            .with_turn(turn(&context))
            .with_progress(progress);
        let started = std::time::Instant::now();
        let (mut result, class) = match conformed {
            Err(e) => (Ok(error_result(&e.to_json())), Some(e.class())),
            Ok(()) => self.run(call.clone(), request, context).await,
        };
        if let Ok(response) = &mut result {
            super::bound::bound(&tool, response, settings.answer_max_chars);
        }
        self.close(&tool, &call, &facts, started, &result, class);
        result
    }

    /// The call of a request that is not a tool call (a resource read): the caller's rules and
    /// the request's cancellation, traced under the request's span.
    pub(super) fn request_call(&self, context: &RequestContext<RoleServer>) -> Call {
        let profile = profile(context);
        let rules = self.access().rules(profile.as_deref());
        let caller = caller(profile.as_deref(), context);
        Call::new(caller, rules, context.ct.clone(), tracing::Span::current())
    }

    /// Runs the tool with `call` in its context; reads back how it ended.
    async fn run(
        &self,
        call: Call,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Ended {
        let span = call.span().clone();
        context.extensions.insert(call);
        let tcc = ToolCallContext::new(self, request, context);
        match self.tool_router.call(tcc).instrument(span).await {
            // An argument the tool's type refused: a tool error naming the field.
            Err(e) => match args::argument_error(&e) {
                Some(refused) => (Ok(error_result(refused)), Some(ErrorClass::InvalidArgument)),
                None => (Err(e), None),
            },
            Ok(response) => match carried_error(&response) {
                // The write a dry run stopped before: its answer, not an error.
                Some((ErrorClass::DryRun, body)) => (
                    Ok(dry_run_result(&body["request"])),
                    Some(ErrorClass::DryRun),
                ),
                Some((class, _)) => (Ok(response), Some(class)),
                None => (Ok(response), None),
            },
        }
    }

    /// The call metrics and, for a tool that changes something upstream (not read-only by its
    /// own annotations), the audit record.
    fn close(
        &self,
        tool: &str,
        call: &Call,
        facts: &Facts,
        started: std::time::Instant,
        result: &Result<CallToolResponse, ErrorData>,
        class: Option<ErrorClass>,
    ) {
        // `ok`, `dry_run`, the error class, or `protocol_error` for a call answered with a
        // JSON-RPC error.
        let outcome = match (result, class) {
            (Ok(_), None) => "ok",
            (Ok(_), Some(class)) => class.as_str(),
            (Err(_), _) => "protocol_error",
        };
        let span = call.span();
        if outcome != "ok" && outcome != "dry_run" {
            span.record("error.type", outcome);
        }
        let attrs = [
            crate::telemetry::kv("tool", tool.to_owned()),
            crate::telemetry::kv("outcome", outcome),
        ];
        let metrics = &self.ops.actors.metrics;
        metrics.tool_calls.add(1, &attrs);
        metrics
            .tool_duration
            .record(started.elapsed().as_secs_f64(), &attrs);
        if !facts.writes {
            return;
        }
        // A keyed send answered from its record wrote nothing this time.
        let replayed = result.as_ref().ok().and_then(|r| match r {
            CallToolResponse::Complete(done) => {
                done.structured_content.as_ref()?.get("replayed")?.as_bool()
            }
            _ => None,
        });
        let who = call.caller();
        span.in_scope(|| {
            tracing::info!(
                target: "audit",
                tool = %tool,
                profile = %who.profile,
                conversation_id = facts.conversation_id.as_deref(),
                outcome = %outcome,
                replayed,
                override_control = facts.override_control,
                dry_run = call.mode() == Mode::DryRun,
                subject = who.subject.as_deref(),
                client_id = who.client_id.as_deref(),
                client_address = who.address.as_deref(),
                forwarded_for = who.forwarded_for.as_deref(),
                "write"
            );
        });
    }
}

/// A tool outside the caller's profile: refused and audited, nothing run.
fn refuse(tool: &str, caller: &Caller) -> CallToolResponse {
    let refused = CallError::Forbidden {
        tool: tool.to_owned(),
        profile: caller.profile.clone(),
    };
    tracing::warn!(
        target: "audit",
        tool = %tool,
        profile = %caller.profile,
        outcome = refused.class().as_str(),
        subject = caller.subject.as_deref(),
        client_id = caller.client_id.as_deref(),
        client_address = caller.address.as_deref(),
        forwarded_for = caller.forwarded_for.as_deref(),
        "refused"
    );
    error_result(&refused.to_json())
}
