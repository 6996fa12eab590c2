//! The outermost layer: CORS, for MCP clients running in a browser (the MCP Inspector, web
//! agents) on an origin given with `--allowed-origin`. A preflight is answered here, before any
//! token is asked for (a browser never sends credentials with one); every answer of `/mcp`,
//! refusals included, carries `Access-Control-Allow-Origin` for an allowed origin, so the page
//! can read the 401's challenge and the session id. Other origins get no CORS headers: the
//! browser keeps the answer from the page. The protected-resource metadata is public: any
//! origin may read it.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// What a browser client of `/mcp` sends besides the simple headers: the bearer token, the
/// JSON body's type, and the Streamable HTTP transport's headers.
const REQUEST_HEADERS: [HeaderName; 8] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("mcp-protocol-version"),
    HeaderName::from_static("mcp-session-id"),
    HeaderName::from_static("last-event-id"),
    HeaderName::from_static("mcp-method"),
    HeaderName::from_static("mcp-name"),
];

/// What a page must read of `/mcp`'s answers: the session it opened, and the challenge of a
/// 401 (where to get a token).
const EXPOSED_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("mcp-session-id"),
    header::WWW_AUTHENTICATE,
];

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// CORS for `/mcp`, for the origins that may call it (each as a browser sends it:
/// `https://app.example.com`, no path).
pub(super) fn mcp(origins: impl IntoIterator<Item = String>) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .into_iter()
        .filter_map(|o| HeaderValue::from_str(o.trim().trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(REQUEST_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .max_age(PREFLIGHT_MAX_AGE)
}

/// CORS for the public metadata: any origin may read it.
pub(crate) fn public() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET])
        .allow_headers(Any)
        .max_age(PREFLIGHT_MAX_AGE)
}
