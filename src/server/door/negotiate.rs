//! HTTP as clients really speak it, in front of rmcp's Streamable HTTP service on `/mcp`.
//!
//! The Streamable HTTP transport asks clients to accept both `application/json` and
//! `text/event-stream`, and rmcp refuses anything else with 406. Real clients send `*/*`, no
//! `Accept` at all, `application/json` alone or `text/event-stream` alone. This layer serves
//! them all (RFC 9110 §12.5.1: no `Accept` means anything goes):
//!
//! - both types acceptable (listed, `*/*`, `application/*` with `text/*`, or no header): passed
//!   on as the transport wants it;
//! - JSON only: an answer that comes as a stream is read to its JSON-RPC response, which is
//!   sent as `application/json` (notifications sent before it are dropped: the client cannot
//!   take them);
//! - a stream only: a plain JSON answer is sent as one SSE `message` event.
//!
//! A body that is not one JSON-RPC message gets a JSON-RPC error with HTTP 400 (`-32700` for
//! what is not JSON, `-32600` for a batch, which MCP removed in 2025-06-18, or an object that is
//! no message, `-32602` for `params` or a tool call's `arguments` that are not objects), and an
//! `Accept` that allows neither answer type gets one with HTTP 406, rather than the transport's
//! plain text. A tool call's `arguments` sent as JSON text of an object is read as the object.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use serde_json::{Value, json};

const JSON: &str = "application/json";
const SSE: &str = "text/event-stream";

/// What the client can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Both,
    JsonOnly,
    StreamOnly,
    /// Neither: left to the transport, which answers 406.
    Neither,
}

/// Reads `Accept` (media ranges with optional `q`; `q=0` excludes).
fn takes(accept: Option<&str>) -> Takes {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Takes::Both;
    };
    let (mut json, mut sse) = (false, false);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let excluded = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if excluded {
            continue;
        }
        match media.as_str() {
            "*/*" => (json, sse) = (true, true),
            JSON | "application/*" => json = true,
            SSE | "text/*" => sse = true,
            _ => {}
        }
    }
    match (json, sse) {
        (true, true) => Takes::Both,
        (true, false) => Takes::JsonOnly,
        (false, true) => Takes::StreamOnly,
        (false, false) => Takes::Neither,
    }
}

/// A JSON-RPC error answer with HTTP status `status`, to the request `id` (`null` when it is
/// not known).
fn jsonrpc_error(id: Option<&Value>, status: StatusCode, code: i64, message: &str) -> Response {
    let id = id.cloned().unwrap_or(Value::Null);
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// A path that answers some requests itself, asked once a POST's message is checked and before
/// the request goes on to rmcp's service (the plain stateless tool call, `stateless.rs`).
pub(super) trait PlainPath: Send + Sync {
    /// Whether it takes the request (`parts`, its checked JSON-RPC `message`), given whether the
    /// client takes a JSON answer.
    fn takes(&self, parts: &Parts, message: &Value, json_answer: bool) -> bool;

    /// Answers a request it took; gives `parts` back when it cannot after all (the request then
    /// goes on to rmcp's service).
    fn answer(&self, parts: Parts, message: Value) -> BoxFuture<'_, Result<Response, Parts>>;
}

/// What the middleware needs: the largest `/mcp` body read (the transport's own limit, which
/// it would enforce anyway), and the path that answers plain calls itself, when `/mcp` has one.
#[derive(Clone)]
pub(super) struct Negotiation {
    pub(super) body_limit: usize,
    pub(super) plain: Option<std::sync::Arc<dyn PlainPath>>,
}

/// The middleware on `/mcp`; see the module docs.
pub(super) async fn negotiate(
    axum::extract::State(state): axum::extract::State<Negotiation>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let takes = takes(accept.as_deref());
    let (mut parts, body) = req.into_parts();
    let bytes = match read_body(body, state.body_limit).await {
        Ok(bytes) => bytes,
        Err((status, code, why)) => return jsonrpc_error(None, status, code, &why),
    };
    let json_body = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(JSON));
    if !json_body {
        return jsonrpc_error(
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            -32600,
            "send the JSON-RPC message with Content-Type: application/json",
        );
    }
    if takes == Takes::Neither {
        return jsonrpc_error(
            None,
            StatusCode::NOT_ACCEPTABLE,
            -32600,
            "this endpoint answers application/json or text/event-stream: send an Accept header that allows either (or */*, or none)",
        );
    }
    let mut message = match one_message(&bytes) {
        Ok(message) => message,
        Err((status, code, why)) => return jsonrpc_error(None, status, code, &why),
    };
    let rewritten = match check_message(&mut message) {
        Ok(rewritten) => rewritten,
        Err((code, why)) => {
            return jsonrpc_error(message.get("id"), StatusCode::BAD_REQUEST, code, &why);
        }
    };
    let id = message.get("id").cloned();
    // The body goes on as it came, unless the arguments were taken as meant.
    let bytes = if rewritten {
        Bytes::from(message.to_string())
    } else {
        bytes
    };
    // A plain stateless tool call is answered without a service of its own.
    if let Some(plain) = &state.plain
        && plain.takes(&parts, &message, takes != Takes::StreamOnly)
    {
        match plain.answer(parts, message).await {
            Ok(response) => return response,
            Err(given_back) => parts = given_back,
        }
    }
    parts.headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    // The transport's own refusals come as plain text, or with no type at all; a foreign Host
    // or Origin (403) is explained by the layer before this one.
    let plain = !content_type.starts_with(JSON) && !content_type.starts_with(SSE);
    if response.status().is_client_error() && response.status() != StatusCode::FORBIDDEN && plain {
        return explain_plain_refusal(response, id.as_ref()).await;
    }
    match takes {
        Takes::JsonOnly if content_type.starts_with(SSE) => stream_to_json(response, id).await,
        Takes::StreamOnly if content_type.starts_with(JSON) => json_to_stream(response).await,
        _ => response,
    }
}

/// A JSON-RPC error to answer instead of passing a request on: the HTTP status, the JSON-RPC
/// code and the sentence.
type Refusal = (StatusCode, i64, String);

/// The body, read within the transport's limit (for a look at the start and the id).
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Refusal> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            -32600,
            format!("the request body is larger than {limit} bytes"),
        )),
        Err(_) => Err((
            StatusCode::BAD_REQUEST,
            -32700,
            "the request body could not be read".to_owned(),
        )),
    }
}

/// The body as one JSON value that is not a batch.
fn one_message(bytes: &[u8]) -> Result<Value, Refusal> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(_)) => Err((
            StatusCode::BAD_REQUEST,
            -32600,
            "JSON-RPC batches are not supported (MCP removed them in 2025-06-18): send one JSON-RPC message per POST".to_owned(),
        )),
        Ok(m) => Ok(m),
        Err(e) => Err((
            StatusCode::BAD_REQUEST,
            -32700,
            format!("parse error: the body is not JSON ({e})"),
        )),
    }
}

/// Checks that `message` is one JSON-RPC 2.0 message (JSON-RPC 2.0 §4, §5), and takes the
/// `arguments` of a `tools/call` as clients send them: JSON text of an object is the object,
/// `null` is none. `Ok(true)` when it rewrote the message; what is not a message gets its
/// JSON-RPC error code and a sentence.
fn check_message(message: &mut Value) -> Result<bool, (i64, String)> {
    let invalid = |why: &str| Err((-32600, format!("invalid request: {why}")));
    let Some(m) = message.as_object_mut() else {
        return invalid("the body is one JSON-RPC message, an object");
    };
    if m.get("jsonrpc") != Some(&Value::from("2.0")) {
        return invalid("\"jsonrpc\": \"2.0\" is missing");
    }
    let is_answer = m.contains_key("result") || m.contains_key("error");
    match m.get("method") {
        Some(Value::String(_)) => {}
        None if is_answer => return Ok(false),
        _ => return invalid("a request needs a method (a string)"),
    }
    match m.get("id") {
        None | Some(Value::String(_) | Value::Number(_)) => {}
        Some(_) => return invalid("id must be a string or a number"),
    }
    match m.get("params") {
        None | Some(Value::Object(_)) => {}
        Some(_) => return Err((-32602, "invalid params: params must be an object".into())),
    }
    if m.get("method") != Some(&Value::from("tools/call")) {
        return Ok(false);
    }
    let Some(Value::Object(params)) = m.get_mut("params") else {
        return Ok(false);
    };
    let not_an_object = || {
        Err((
            -32602,
            "invalid params: arguments must be an object of the tool's arguments (or JSON text of one)".to_owned(),
        ))
    };
    let rewritten = match params.get("arguments") {
        None | Some(Value::Object(_)) => return Ok(false),
        Some(Value::Null) => None,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(o @ Value::Object(_)) => Some(o),
            _ => return not_an_object(),
        },
        Some(_) => return not_an_object(),
    };
    match rewritten {
        Some(o) => params.insert("arguments".into(), o),
        None => params.remove("arguments"),
    };
    Ok(true)
}

/// The transport's plain-text refusal of a POST, as the JSON-RPC error a client reads, with the
/// next step where one is known.
async fn explain_plain_refusal(response: Response, id: Option<&Value>) -> Response {
    let status = response.status();
    let text = match response.into_body().collect().await {
        Ok(c) => String::from_utf8_lossy(&c.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.contains("Session ID is required") {
        "this request names no MCP session and is not a stateless one: send it stateless (headers MCP-Protocol-Version: 2026-07-28 and Mcp-Method: <the method>, plus Mcp-Name: <the tool> for tools/call; params._meta with io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities), or open a session with initialize and send its Mcp-Session-Id".to_owned()
    } else {
        format!("the MCP transport refused the request: {text}")
    };
    jsonrpc_error(id, status, -32600, &message)
}

/// Reads an SSE answer until the JSON-RPC response to `id` arrives; answers it as JSON.
async fn stream_to_json(response: Response, id: Option<Value>) -> Response {
    let (mut parts, mut body) = response.into_parts();
    let mut buffer = String::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend(
            String::from_utf8_lossy(&data)
                .chars()
                .filter(|c| *c != '\r'),
        );
        // Events end with a blank line; each `data:` line holds (part of) one message.
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data: String = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect::<Vec<_>>()
                .join("\n");
            let Ok(message) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            let answers = message.get("result").is_some() || message.get("error").is_some();
            if answers && (id.is_none() || message.get("id") == id.as_ref()) {
                parts.headers.remove(header::CONTENT_LENGTH);
                parts
                    .headers
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
                return Response::from_parts(parts, Body::from(data));
            }
        }
    }
    jsonrpc_error(
        id.as_ref(),
        StatusCode::INTERNAL_SERVER_ERROR,
        -32603,
        "the answer ended before its JSON-RPC response",
    )
}

/// Sends a plain JSON answer as one SSE `message` event.
async fn json_to_stream(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes: Bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let data: String = text
        .lines()
        .map(|l| format!("data: {l}\n"))
        .collect::<String>();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SSE));
    Response::from_parts(parts, Body::from(format!("event: message\n{data}\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_as_clients_send_them() {
        for (accept, expected) in [
            (None, Takes::Both),
            (Some(""), Takes::Both),
            (Some("*/*"), Takes::Both),
            (Some("application/json, text/event-stream"), Takes::Both),
            (Some("application/json"), Takes::JsonOnly),
            (Some("Application/JSON; charset=utf-8"), Takes::JsonOnly),
            (Some("text/event-stream"), Takes::StreamOnly),
            (
                Some("application/json, text/event-stream;q=0"),
                Takes::JsonOnly,
            ),
            (Some("text/html"), Takes::Neither),
        ] {
            assert_eq!(takes(accept), expected, "{accept:?}");
        }
    }
}
