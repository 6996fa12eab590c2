//! The `Host` values `/mcp` accepts, and the transport's refusal of a `Host` or an `Origin`
//! explained as a JSON error that names the flag allowing it.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ErrorClass;
use crate::server::problem;

/// The `Host` values `/mcp` accepts, matched as the transport's DNS-rebinding protection
/// matches them: the host name (lowercase, without brackets), and the port when the entry names
/// one.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts(std::sync::Arc<Vec<(String, Option<u16>)>>);

impl AllowedHosts {
    /// From the allowed entries (`name` or `name:port`).
    pub(crate) fn new(entries: &[String]) -> Self {
        let parsed = entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(|e| match e.parse::<axum::http::uri::Authority>() {
                Ok(a) => (bare(a.host()), a.port_u16()),
                Err(_) => (bare(e), None),
            })
            .collect();
        Self(std::sync::Arc::new(parsed))
    }

    /// Whether the `Host` value `host` names an allowed host.
    pub(crate) fn allow(&self, host: &str) -> bool {
        let Ok(authority) = host.trim().parse::<axum::http::uri::Authority>() else {
            return false;
        };
        let (name, port) = (bare(authority.host()), authority.port_u16());
        self.0
            .iter()
            .any(|(n, p)| *n == name && p.is_none_or(|p| Some(p) == port))
    }
}

/// A host name without brackets, lowercase.
fn bare(host: &str) -> String {
    host.trim_matches(|c| c == '[' || c == ']')
        .to_ascii_lowercase()
}

/// The host name of a `Host` value or an allowed entry: without port and brackets, lowercase.
fn host_name(authority: &str) -> String {
    let a = authority.trim();
    let name = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else if a.matches(':').count() > 1 {
        // A bare IPv6 address: its colons are not a port separator.
        a
    } else {
        a.rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(a, |(host, _)| host)
    };
    name.to_ascii_lowercase()
}

/// Turns the transport's plain-text 403 (DNS-rebinding protection refused the `Host` or the
/// `Origin`) into the route's JSON error naming the flag that allows it.
pub(super) async fn explain_refusal(
    axum::extract::State(allowed): axum::extract::State<AllowedHosts>,
    req: Request,
    next: Next,
) -> Response {
    let (host, origin) = {
        let header = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        (header(header::HOST), header(header::ORIGIN))
    };
    let response = next.run(req).await;
    if response.status() != StatusCode::FORBIDDEN {
        return response;
    }
    let host = host.unwrap_or_default();
    let name = host_name(&host);
    let host_allowed = allowed.allow(&host);
    let message = match origin {
        Some(origin) if host_allowed => format!(
            "Origin {origin} is not allowed to call /mcp (DNS-rebinding protection): start the server with --allowed-origin {origin} if this page may call it"
        ),
        _ => format!(
            "Host {host:?} is not allowed on /mcp (DNS-rebinding protection): start the server with --allowed-host {name} if clients reach it by that name"
        ),
    };
    problem(StatusCode::FORBIDDEN, ErrorClass::Forbidden, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_without_ports_or_brackets() {
        assert_eq!(host_name("Example.org:8090"), "example.org");
        assert_eq!(host_name("[::1]:8090"), "::1");
        assert_eq!(host_name("::1"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
    }

    #[test]
    fn allowed_hosts_match_the_name_and_a_given_port() {
        let allowed =
            AllowedHosts::new(&["localhost".into(), "::1".into(), "Example.org:8443".into()]);
        assert!(allowed.allow("LOCALHOST:8090"));
        assert!(allowed.allow("[::1]:8090"));
        assert!(allowed.allow("example.org:8443"));
        assert!(!allowed.allow("example.org:8444"));
        assert!(!allowed.allow("example.org"));
        assert!(!allowed.allow("evil.example:8090"));
    }
}
