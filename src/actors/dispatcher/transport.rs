//! The HTTP client, built here and nowhere else: one exchange with the upstream, its failure
//! classified by whether the request can have reached the upstream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use crate::error::CallError;
use crate::secret::Secret;
use crate::sunco::endpoints::HttpRequest;

/// The HTTP client. Constructed here and nowhere else.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    base: Arc<str>,
    pub(super) host: Arc<str>,
    pub(super) port: u16,
}

pub(super) enum AttemptError {
    /// The connection was never made: the upstream did not see the request.
    NotSent(String),
    /// The request may have reached the upstream but no answer came in time.
    Timeout,
    /// The connection broke after the request was written.
    Broken(String),
}

impl Transport {
    pub(crate) fn new(base: &Url) -> Result<Self, CallError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("zendesk-messaging-mcp/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            // Redirects are answers to report, not to follow with the credential attached.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CallError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base.as_str().trim_end_matches('/').into(),
            host: base.host_str().unwrap_or_default().into(),
            port: base.port_or_known_default().unwrap_or(443),
        })
    }

    pub(super) async fn send(
        &self,
        req: &HttpRequest,
        auth: &Secret,
        timeout: Duration,
        trace: Vec<(String, String)>,
    ) -> Result<(u16, Option<Duration>, Bytes), AttemptError> {
        let mut url = format!("{}{}", self.base, req.path);
        if !req.query.is_empty() {
            url.push('?');
            url.push_str(&encode_query(&req.query));
        }
        let mut authorization = reqwest::header::HeaderValue::from_str(auth.expose())
            .map_err(|_| AttemptError::NotSent("the credential is not a valid header".into()))?;
        // Keeps the credential out of any Debug output of the request.
        authorization.set_sensitive(true);
        let mut builder = self
            .client
            .request(req.method.clone(), url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .timeout(timeout);
        for (name, value) in trace {
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(3600.0)));
        let body = response.bytes().await.map_err(classify)?;
        Ok((status, retry_after, body))
    }
}

fn classify(e: reqwest::Error) -> AttemptError {
    if e.is_connect() {
        AttemptError::NotSent(without_url(&e))
    } else if e.is_timeout() {
        AttemptError::Timeout
    } else {
        AttemptError::Broken(without_url(&e))
    }
}

/// The error text without the URL (ids of the caller's data stay out of messages and logs).
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(&format!(" ({url})"), "");
        msg = msg.replace(url.as_str(), "upstream");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn encode_query(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
