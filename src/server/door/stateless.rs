//! Stateless (2026-07-28) tool calls answered without a service per request.
//!
//! rmcp's Streamable HTTP service serves each stateless POST by starting a whole MCP service
//! for it (a task, channels, a transport, a peer and a cancellation tree), then encodes the
//! message to JSON once more to check its `Mcp-*` headers against a copy of the tool's schema.
//! On a hop measured in microseconds that is most of the cost (benches/README.md, "The cost of
//! a hop"). This path takes the plainest and most common request, a `tools/call` that carries
//! everything the 2026-07-28 protocol asks of it, and hands it to the same handler the service
//! would (`Service::handle_request` of [`ZendeskMcp`], so the protocol version checks, the
//! required `_meta` keys and the shaping of the result stay rmcp's own) with one peer shared by
//! every such call. Every other request, and any that is unusual in a way this path does not
//! check, goes to rmcp's service exactly as before.
//!
//! A request taken here has (MCP 2026-07-28, Streamable HTTP and SEP-2243 standard headers):
//! `POST /mcp` with no `Mcp-Session-Id` and no `Origin`; a `Host` the allowed hosts name (as
//! rmcp matches them: host name, and the port when the entry gives one); exactly one
//! `MCP-Protocol-Version: 2026-07-28`, one `Mcp-Method: tools/call` and one `Mcp-Name` equal to
//! the tool's name, no `Mcp-Param-*`; a body naming a tool this server has, with `arguments` an
//! object or absent, no `task`, and a `_meta` with `protocolVersion` 2026-07-28 and
//! `clientCapabilities`, without a `progressToken` (progress goes out as a stream, which only
//! the service sends), and no `result` or `error` beside its `method`. The answer is the JSON-RPC response as `application/json` with HTTP 200,
//! or the JSON-RPC error with the status the protocol gives its code (400 for an unsupported
//! version, a missing client capability or a header mismatch, 404 for an unknown method, else
//! 200). The handler runs in a task of its own, so a caller that goes away does not cut a
//! write short.
//!
//! What the handler sees is what the service gives it (the request's `_meta`, its extensions
//! with the HTTP request's parts), with two differences no tool meets today: the peer is shared
//! and has no handshake info (the 2026-07-28 request's `_meta` carries the version and client
//! capabilities the handler reads), and what it would send the client besides its answer goes
//! nowhere. No tool sends notifications on a stateless call without a progress token, or
//! requests to the client; one that did would have to take the service's path. A body with a
//! duplicate key is read as `serde_json` reads it (the last value wins), where the service
//! refuses it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequest, ClientRequest, ErrorCode, GetExtensions, GetMeta, ProtocolVersion, RequestId,
    ServerJsonRpcMessage,
};
use rmcp::service::{RequestContext, RunningService, Service};
use serde_json::Value;
use tracing::Instrument;

use crate::live::Live;
use crate::mcp::ZendeskMcp;
use crate::operations::Operations;

use super::hosts::AllowedHosts;
use super::negotiate::PlainPath;

/// The protocol revision whose requests carry all they need.
const STATELESS_VERSION: &str = "2026-07-28";
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// The stateless `tools/call` path; see the module docs.
pub(super) struct StatelessCalls {
    ops: Arc<Operations>,
    live: Arc<Live>,
    hosts: AllowedHosts,
    /// The one peer every call here shares. Nothing is ever sent to its service, and what the
    /// service would send goes nowhere: no call taken here sends anything but its answer.
    running: RunningService<RoleServer, ZendeskMcp>,
    /// Keeps the peer's input open (and silent).
    _input: tokio::io::DuplexStream,
}

impl std::fmt::Debug for StatelessCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatelessCalls")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl StatelessCalls {
    /// Starts the shared peer (needs a Tokio runtime). `hosts`: the `Host` values `/mcp`
    /// accepts, as given to rmcp's service.
    pub(super) fn new(ops: Arc<Operations>, live: Arc<Live>, hosts: AllowedHosts) -> Self {
        let (input, quiet) = tokio::io::duplex(64);
        let running = rmcp::service::serve_directly(
            ZendeskMcp::new(ops.clone(), live.clone()),
            (quiet, tokio::io::sink()),
            None,
        );
        Self {
            ops,
            live,
            hosts,
            running,
            _input: input,
        }
    }

    /// Whether this path takes the request (`parts`, its checked JSON-RPC `message`) and the
    /// client takes a JSON answer; see the module docs.
    fn takes(&self, parts: &Parts, message: &Value, json_answer: bool) -> bool {
        let headers = &parts.headers;
        json_answer
            && parts.method == Method::POST
            && parts.uri.path() == "/mcp"
            && !headers.contains_key("mcp-session-id")
            && !headers.contains_key(header::ORIGIN)
            && only(headers, "mcp-protocol-version") == Some(STATELESS_VERSION)
            && only(headers, "mcp-method") == Some("tools/call")
            && !headers.keys().any(|k| k.as_str().starts_with("mcp-param-"))
            && only(headers, header::HOST.as_str()).is_some_and(|h| self.hosts.allow(h))
            && plain_tool_call(message).is_some_and(|name| only(headers, "mcp-name") == Some(name))
    }

    /// Answers a request [`Self::takes`] took (`message`, its JSON-RPC message); gives `parts`
    /// back when the message is not one rmcp's model reads as a tool call (the caller then hands
    /// the request to the service, which says what is wrong). The message is read straight into
    /// rmcp's `tools/call` request type, without first trying it as every other message.
    async fn answer(&self, parts: Parts, mut message: Value) -> Result<Response, Parts> {
        let id = message
            .get_mut("id")
            .map(Value::take)
            .and_then(|id| serde_json::from_value::<RequestId>(id).ok());
        let (Some(id), Ok(call)) = (id, serde_json::from_value::<CallToolRequest>(message)) else {
            return Err(parts);
        };
        let mut request = ClientRequest::CallToolRequest(call);
        let meta = std::mem::take(request.get_meta_mut());
        // Client capabilities that do not decode count as missing: the service answers that
        // with HTTP 400.
        if !meta
            .missing_required_keys(&ProtocolVersion::V_2026_07_28)
            .is_empty()
        {
            return Err(parts);
        }
        let mut context = RequestContext::new(id.clone(), self.running.peer().clone());
        context.meta = meta;
        context.extensions = std::mem::take(request.extensions_mut());
        context.extensions.insert(parts);
        let service = ZendeskMcp::new(self.ops.clone(), self.live.clone());
        // A caller that goes away cancels the call (its long work stops sending upstream); the
        // handler's task still ends what it started, so a write in flight is not cut short.
        let gone = context.ct.clone().drop_guard();
        let handled = tokio::spawn(
            async move { service.handle_request(request, context).await }.in_current_span(),
        )
        .await;
        gone.disarm();
        let (message, status) = match handled {
            Ok(Ok(result)) => (ServerJsonRpcMessage::response(result, id), StatusCode::OK),
            Ok(Err(error)) => {
                let status = status_of(error.code);
                (ServerJsonRpcMessage::error(error, Some(id)), status)
            }
            Err(_) => (
                ServerJsonRpcMessage::error(
                    rmcp::ErrorData::internal_error("the tool call ended abnormally", None),
                    Some(id),
                ),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        };
        let body = match serde_json::to_vec(&message) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!("cannot encode a tool call's answer: {e}");
                return Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }
}

impl PlainPath for StatelessCalls {
    fn takes(&self, parts: &Parts, message: &Value, json_answer: bool) -> bool {
        StatelessCalls::takes(self, parts, message, json_answer)
    }

    fn answer(&self, parts: Parts, message: Value) -> BoxFuture<'_, Result<Response, Parts>> {
        Box::pin(StatelessCalls::answer(self, parts, message))
    }
}

/// The value of header `name` when it is given exactly once, as text.
fn only<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// The tool's name, when `message` is a `tools/call` request this path takes: a tool this
/// server has, `arguments` an object or absent, no `task`, the 2026-07-28 `_meta` keys, no
/// progress token.
fn plain_tool_call(message: &Value) -> Option<&str> {
    let m = message.as_object()?;
    let id = m.get("id")?;
    if m.get("method")?.as_str()? != "tools/call"
        || !(id.is_string() || id.is_number())
        || m.contains_key("result")
        || m.contains_key("error")
    {
        return None;
    }
    let params = m.get("params")?.as_object()?;
    let name = params.get("name")?.as_str()?;
    ZendeskMcp::tool_is_read_only(name)?;
    if !matches!(params.get("arguments"), None | Some(Value::Object(_)))
        || params.contains_key("task")
    {
        return None;
    }
    let meta = params.get("_meta")?.as_object()?;
    let plain = meta.get(META_PROTOCOL_VERSION)?.as_str()? == STATELESS_VERSION
        && meta.get(META_CLIENT_CAPABILITIES)?.is_object()
        && !meta.contains_key("progressToken");
    plain.then_some(name)
}

/// The HTTP status of a JSON-RPC error answer on the stateless protocol.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
        | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}
