//! `/mcp` as an OAuth 2.1 resource server (the MCP specification's authorization section):
//! protected-resource metadata (RFC 9728), JWT access tokens (RFC 9068) verified against the
//! authorization server's keys, audience bound to this server (RFC 8707 resource indicators),
//! scopes mapped to what a caller may do.
//!
//! The authorization server's metadata is read from its well-known paths (RFC 8414
//! `oauth-authorization-server`, else OpenID Connect discovery) on first use; its key set (JWKS)
//! is cached and fetched again when a token names a key it lacks, at most once per
//! [`REFRESH_GAP`]. Opaque tokens (introspection) are not supported.

use std::collections::BTreeSet;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The scopes this server defines, with what each grants by default.
pub(crate) const SCOPE_READ: &str = "messaging:read";
pub(crate) const SCOPE_WRITE: &str = "messaging:write";
pub(crate) const SCOPE_SEND: &str = "messaging:send";

/// The tools only `messaging:send` grants: what reaches customers.
pub(crate) const SEND_TOOLS: &[&str] = &["send_message"];

/// The shortest time between two fetches of the key set (a flood of tokens with unknown keys
/// cannot make the server hammer the authorization server).
pub(crate) const REFRESH_GAP: Duration = Duration::from_secs(30);

/// The protected-resource metadata's well-known path (RFC 9728 §3).
pub(crate) const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Clock skew allowed on `exp` and `nbf`, seconds.
const LEEWAY_SECS: u64 = 30;

/// Signature algorithms accepted: asymmetric only (a shared-secret HS* token could be minted by
/// anyone holding the secret, and `none` is no signature).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What the operator configured: `--oauth-issuer` and `--public-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The authorization server's issuer identifier, parsed.
    pub(crate) issuer: Url,
    /// The issuer as given (a parsed URL gains a trailing slash; issuers are compared exactly).
    pub issuer_given: String,
    /// This server's `/mcp` as callers reach it: the resource identifier of the metadata.
    pub public_url: Url,
    /// The `aud` values a token may carry (one is enough); the public URL unless the operator
    /// names others (`--oauth-audience`: Entra ID's tokens name the API, never its URL).
    audiences: Vec<String>,
}

impl OAuthSettings {
    /// Checks both URLs: absolute, https (http only on a loopback host), no fragment; the
    /// public URL names `/mcp`. The error names the setting.
    pub fn new(issuer: &str, public_url: &str) -> Result<Self, String> {
        let parse = |name: &str, raw: &str| -> Result<Url, String> {
            let url = Url::parse(raw.trim())
                .map_err(|e| format!("{name}: {raw:?} is not an absolute URL ({e})"))?;
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                return Err(format!(
                    "{name}: {raw:?} must be https (http only for a loopback host)"
                ));
            }
            if url.fragment().is_some() {
                return Err(format!("{name}: {raw:?} must not have a fragment"));
            }
            Ok(url)
        };
        let issuer_given = issuer.trim().to_owned();
        let issuer = parse("--oauth-issuer", issuer)?;
        let public_url = parse("--public-url", public_url)?;
        if !public_url.path().ends_with("/mcp") {
            return Err(format!(
                "--public-url: {public_url} must be the full URL of this server's /mcp endpoint, e.g. https://mcp.example.com/mcp"
            ));
        }
        Ok(Self {
            issuer,
            issuer_given,
            audiences: vec![public_url.as_str().to_owned()],
            public_url,
        })
    }

    /// Accepts tokens whose `aud` names one of `audiences` instead of the public URL (none
    /// given: the public URL stays the audience). Blank values are refused.
    pub fn with_audiences(mut self, audiences: Vec<String>) -> Result<Self, String> {
        if audiences.is_empty() {
            return Ok(self);
        }
        let mut named = Vec::new();
        for a in audiences {
            let a = a.trim();
            if a.is_empty() {
                return Err("--oauth-audience: an audience is empty: name each value a token's aud may carry, comma-separated".into());
            }
            named.push(a.to_owned());
        }
        self.audiences = named;
        Ok(self)
    }

    /// The audiences a token's `aud` may name.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The resource identifier (RFC 9728 `resource`): the public URL.
    pub fn resource(&self) -> String {
        self.public_url.as_str().to_owned()
    }

    /// Where the protected-resource metadata is served (RFC 9728 §3.1: the well-known path
    /// with the resource's path appended).
    pub(crate) fn metadata_url(&self) -> String {
        let mut url = self.public_url.clone();
        url.set_path(&self.metadata_path());
        url.set_query(None);
        url.to_string()
    }

    /// The path of [`Self::metadata_url`]: `/.well-known/oauth-protected-resource/zendesk/mcp`
    /// for `https://host/zendesk/mcp`.
    pub(crate) fn metadata_path(&self) -> String {
        format!(
            "{METADATA_PATH}{}",
            self.public_url.path().trim_end_matches('/')
        )
    }

    /// The `Host` value callers send to reach the public URL.
    #[cfg(test)]
    pub(crate) fn public_host(&self) -> Option<String> {
        let host = self.public_url.host_str()?;
        Some(match self.public_url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        })
    }
}

/// A verified access token: who, for which client, with which scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    pub(crate) subject: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) scopes: BTreeSet<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    /// RFC 9068.
    #[serde(default)]
    client_id: Option<String>,
    /// OpenID Connect's authorized party, which some servers send instead.
    #[serde(default)]
    azp: Option<String>,
    /// RFC 9068 says one space-separated string; Spring Authorization Server, Duende and UAA
    /// send a list.
    #[serde(default)]
    scope: Option<Scopes>,
    /// Entra ID's name for it: one space-separated string; some servers send a list.
    #[serde(default)]
    scp: Option<Scopes>,
}

/// A scope claim as authorization servers send it: one space-separated string, or a list of
/// strings (each of which may hold several, space-separated).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scopes {
    Words(String),
    List(Vec<String>),
}

impl Scopes {
    fn words(&self) -> impl Iterator<Item = &str> {
        let items: &[String] = match self {
            Scopes::Words(s) => std::slice::from_ref(s),
            Scopes::List(l) => l,
        };
        items.iter().flat_map(|s| s.split_whitespace())
    }
}

#[derive(Debug, Deserialize)]
struct ServerMetadata {
    issuer: String,
    jwks_uri: String,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// The token is not one this server accepts: why (for the caller).
    Invalid(String),
    /// The authorization server's metadata or keys cannot be had now: why (for the log only).
    Unavailable(String),
}

#[derive(Debug, Default)]
struct Keys {
    /// The issuer exactly as the authorization server's metadata names it.
    issuer: Option<String>,
    jwks_uri: Option<String>,
    set: Option<JwkSet>,
    fetched: Option<Instant>,
}

/// The resource server: verifies tokens against the configured authorization server.
#[derive(Debug)]
pub struct ResourceServer {
    pub settings: OAuthSettings,
    http: reqwest::Client,
    keys: Mutex<Keys>,
    refresh_gap: Duration,
}

impl ResourceServer {
    pub fn new(settings: OAuthSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            settings,
            http,
            keys: Mutex::new(Keys::default()),
            refresh_gap: REFRESH_GAP,
        }
    }

    /// With another shortest time between two fetches of the key set than [`REFRESH_GAP`].
    pub fn with_refresh_gap(mut self, gap: Duration) -> Self {
        self.refresh_gap = gap;
        self
    }

    /// The protected-resource metadata document (RFC 9728 §2) naming `scopes`; the issuer
    /// exactly as its own metadata names it, once read, else as configured.
    pub(crate) async fn metadata(&self, scopes: &[String]) -> Value {
        let issuer = self
            .keys
            .lock()
            .await
            .issuer
            .clone()
            .unwrap_or_else(|| self.settings.issuer_given.clone());
        json!({
            "resource": self.settings.resource(),
            "authorization_servers": [issuer],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "zendesk-messaging-mcp",
        })
    }

    /// The `WWW-Authenticate` value of a refusal (RFC 6750 §3, RFC 9728 §5.1): the metadata's
    /// URL, the error when a token was presented (none for a request without credentials,
    /// RFC 6750 §3.1), and the scopes to ask for (MCP 2025-11-25: every scope the tokens file
    /// maps, unless the refusal names the one missing), space-separated.
    pub(crate) fn challenge(&self, error: Option<&str>, scope: &str) -> String {
        let mut v = format!(
            "Bearer resource_metadata=\"{}\"",
            self.settings.metadata_url()
        );
        if let Some(e) = error {
            v.push_str(&format!(", error=\"{e}\""));
        }
        v.push_str(&format!(", scope=\"{scope}\""));
        v
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("{url} answered {}", r.status()));
        }
        r.json::<T>()
            .await
            .map_err(|e| format!("{url} did not answer the expected JSON: {e}"))
    }

    /// Reads the authorization server's metadata and key set now (at start: a wrong or
    /// unreachable issuer is logged at once rather than found by the first caller).
    pub(crate) async fn prefetch(&self) -> Result<(), String> {
        let mut keys = self.keys.lock().await;
        self.fetch_keys(&mut keys).await
    }

    async fn fetch_keys(&self, keys: &mut Keys) -> Result<(), String> {
        if keys.jwks_uri.is_none() {
            let (issuer, uri) = self.server_metadata().await?;
            keys.issuer = Some(issuer);
            keys.jwks_uri = Some(uri);
        }
        let uri = keys.jwks_uri.clone().unwrap_or_default();
        keys.fetched = Some(Instant::now());
        let set: JwkSet = self.fetch_json(&uri).await?;
        tracing::info!(
            keys = set.keys.len(),
            "fetched the authorization server's key set"
        );
        keys.set = Some(set);
        Ok(())
    }

    /// The authorization server's issuer and `jwks_uri`, from RFC 8414 metadata or OpenID
    /// discovery, whose `issuer` must be the configured one (a trailing slash aside).
    async fn server_metadata(&self) -> Result<(String, String), String> {
        let issuer = &self.settings.issuer;
        let path = issuer.path().trim_end_matches('/');
        let origin = issuer.origin().ascii_serialization();
        let candidates = [
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ];
        let mut why = vec![];
        for url in candidates {
            match self.fetch_json::<ServerMetadata>(&url).await {
                Ok(m) => {
                    if m.issuer.trim_end_matches('/')
                        != self.settings.issuer_given.trim_end_matches('/')
                    {
                        return Err(format!(
                            "the metadata at {url} names the issuer {:?}, not {:?}: give --oauth-issuer exactly as the authorization server names itself",
                            m.issuer, self.settings.issuer_given
                        ));
                    }
                    return Ok((m.issuer, m.jwks_uri));
                }
                Err(e) => why.push(e),
            }
        }
        Err(format!(
            "no authorization server metadata for {issuer}: {}",
            why.join("; ")
        ))
    }

    /// The key for `kid` and the issuer, fetching the key set when the key is not known
    /// (bounded by the refresh gap).
    async fn key(&self, kid: Option<&str>) -> Result<(DecodingKey, String), TokenError> {
        let mut keys = self.keys.lock().await;
        let find = |set: &JwkSet| -> Option<DecodingKey> {
            let jwk = match kid {
                Some(kid) => set.find(kid)?,
                // Without a kid, only a set of one key leaves no doubt.
                None => match set.keys.as_slice() {
                    [one] => one,
                    _ => return None,
                },
            };
            DecodingKey::from_jwk(jwk).ok()
        };
        let issuer = |k: &Keys| k.issuer.clone().unwrap_or_default();
        if let Some(k) = keys.set.as_ref().and_then(find) {
            return Ok((k, issuer(&keys)));
        }
        let unknown = || {
            TokenError::Invalid(format!(
                "the token is signed with a key ({}) the authorization server {} does not publish: it was issued by another server, or its key is new (the key set is fetched again at most every {} s)",
                kid.unwrap_or("without a kid"),
                self.settings.issuer_given,
                self.refresh_gap.as_secs().max(1)
            ))
        };
        let may_fetch = keys
            .fetched
            .is_none_or(|at| at.elapsed() >= self.refresh_gap);
        if !may_fetch {
            return Err(unknown());
        }
        self.fetch_keys(&mut keys)
            .await
            .map_err(TokenError::Unavailable)?;
        let found = keys.set.as_ref().and_then(find).ok_or_else(unknown)?;
        Ok((found, issuer(&keys)))
    }

    /// Verifies `token`: an asymmetric signature by a key of the authorization server, `iss`
    /// the issuer, `aud` this resource, `exp`/`nbf` (30 s leeway). The error says what failed
    /// (never the token).
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let invalid = |why: String| TokenError::Invalid(why);
        if token.split('.').count() != 3 {
            return Err(invalid(
                "the bearer token is neither one of this server's static tokens nor a JWT access token".into(),
            ));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            invalid("not a signed JWT access token: its header names no accepted signature algorithm (RS*, PS*, ES256/384, EdDSA)".into())
        })?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(invalid(format!(
                "signature algorithm {:?} is not accepted (asymmetric algorithms only)",
                header.alg
            )));
        }
        let (key, issuer) = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // The issuer exactly as the authorization server names itself.
        validation.set_issuer(&[issuer.as_str()]);
        validation.set_audience(self.settings.audiences());
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            TokenError::Invalid({
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidAudience => format!(
                        "the token is for another resource: its aud must name {}",
                        self.settings.audiences().join(" or ")
                    ),
                    K::Json(_) => format!(
                        "the token's claims are not what an access token carries ({e}): scope and scp are a space-separated string or a list of strings"
                    ),
                    K::InvalidIssuer => format!("the token's iss is not {issuer}"),
                    K::ExpiredSignature => "the token has expired".to_owned(),
                    K::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
                    K::InvalidSignature => "the token's signature does not verify".to_owned(),
                    K::MissingRequiredClaim(c) => format!("the token lacks the {c} claim"),
                    _ => format!("the token was refused ({e})"),
                }
            })
        })?;
        let c = data.claims;
        let scopes: BTreeSet<String> = [&c.scope, &c.scp]
            .into_iter()
            .flatten()
            .flat_map(Scopes::words)
            .map(str::to_owned)
            .collect();
        let client_id = c.client_id.or(c.azp);
        // RFC 9068 requires both; one at least, or nothing says who acts.
        if client_id.is_none() && c.sub.is_none() {
            return Err(invalid(
                "the token names neither its client (client_id or azp) nor a subject (sub)".into(),
            ));
        }
        Ok(Verified {
            subject: c.sub,
            client_id,
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_name_the_metadata_where_rfc_9728_puts_it() {
        let s = OAuthSettings::new("https://auth.example.com", "https://mcp.example.com/mcp")
            .expect("valid");
        assert_eq!(
            s.metadata_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(s.public_host().as_deref(), Some("mcp.example.com"));
        for (issuer, public, says) in [
            (
                "http://auth.example.com",
                "https://m.example.com/mcp",
                "--oauth-issuer",
            ),
            (
                "https://a.example.com",
                "https://m.example.com/",
                "--public-url",
            ),
            ("https://a.example.com", "not a url", "--public-url"),
        ] {
            let e = OAuthSettings::new(issuer, public).expect_err("refused");
            assert!(e.starts_with(says), "{e}");
        }
        assert!(OAuthSettings::new("http://127.0.0.1:9/", "http://localhost:8090/mcp").is_ok());
    }
}
