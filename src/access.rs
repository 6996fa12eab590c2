//! Who may call `/mcp`, and which tools each caller may use.
//!
//! Callers present a bearer token; each token is bound to a profile: a name (for audit records),
//! read-only or read-write, optionally a tool set and an inbound rate limit. `--read-only` and
//! `--tools` bound every profile from above. Without tokens the endpoint is open, which the server
//! allows only on a loopback address unless the operator says otherwise.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::RequestRate;
use crate::secret::Secret;
use crate::shared::InboundLimits;

mod tokens_file;

/// What a caller may do: the profile a bearer token grants (not a user's `profile`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccessProfile {
    pub(crate) name: String,
    pub(crate) read_only: bool,
    /// `None`: every tool (within the global bound).
    pub(crate) tools: Option<BTreeSet<String>>,
    /// Inbound requests per second and burst, per token.
    pub(crate) rate: Option<RequestRate>,
    /// The switchboard integration this caller speaks for (id, name or integrationType): its
    /// business messages go only into conversations that integration controls.
    pub(crate) switchboard_integration: Option<String>,
    /// May pass `overrideControl: true` to send where another integration is in control.
    pub(crate) allow_override: bool,
    /// May send SunCo's in-band commands (`%((…))%`) in message text; each one is audited.
    pub(crate) allow_in_band_commands: bool,
    /// Every write is validated and answered with the request it would send; nothing is sent.
    pub(crate) dry_run: bool,
    /// For an OAuth caller: the token's scopes (which bound its tools), subject and client.
    pub(crate) oauth: Option<OAuthCaller>,
}

impl AccessProfile {
    /// Who the caller is, for binding a session to it: the token's profile, or an OAuth
    /// token's client and subject.
    pub(crate) fn principal(&self) -> String {
        match &self.oauth {
            Some(o) => format!(
                "oauth:{}:{}",
                o.client_id.as_deref().unwrap_or_default(),
                o.subject.as_deref().unwrap_or_default()
            ),
            None => format!("token:{}", self.name),
        }
    }
}

/// Who an OAuth access token speaks for (for audit records and spans; never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthCaller {
    pub(crate) subject: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) scopes: BTreeSet<String>,
}

/// What applies to one caller's calls: its profile within the server's settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallerRules {
    /// Whose conversations the caller's business messages may go into (the send guard).
    pub switchboard_integration: Option<String>,
    /// With no integration named, whether the caller speaks for the switchboard's default
    /// integration (the send guard on by default) rather than for none (`--no-send-guard`).
    pub default_guard: bool,
    pub allow_override: bool,
    /// May send SunCo's in-band commands in text (audited); refused otherwise.
    pub allow_in_band_commands: bool,
    pub dry_run: bool,
}

#[derive(Debug)]
struct Token {
    secret: Secret,
    profile: Arc<AccessProfile>,
}

/// The access rules of one server.
#[derive(Debug, Default)]
pub struct AccessPolicy {
    tokens: Vec<Token>,
    /// Upper bound for every caller: only read-only tools.
    pub read_only: bool,
    /// Upper bound for every caller: only these tools.
    pub(crate) tools: Option<BTreeSet<String>>,
    /// `--switchboard-integration`: the integration every caller speaks for, unless its token
    /// names another.
    pub switchboard_integration: Option<String>,
    /// `--no-send-guard`: callers that name no integration speak for none.
    pub no_send_guard: bool,
    /// `--dry-run`: every caller's writes are dry runs, whatever its token says.
    pub dry_run: bool,
    /// OAuth callers' rules, from the tokens file's `[oauth]` table.
    pub(crate) oauth: OAuthRules,
    /// The OAuth resource server (`--oauth-issuer`): access tokens it verifies are accepted
    /// beside the static tokens, and `/mcp` is never open.
    pub resource_server: Option<Arc<crate::oauth::ResourceServer>>,
}

/// What OAuth callers get, from the tokens file: the tools each scope grants (the defaults when
/// `[oauth.scopes]` is absent) and per-client profiles keyed by `client_id`.
#[derive(Debug, Clone, Default)]
pub(crate) struct OAuthRules {
    /// `None`: `messaging:read` grants the read-only tools, `messaging:write` the other tools
    /// but the sending ones, `messaging:send` those ([`crate::oauth::SEND_TOOLS`]).
    pub(crate) scopes: Option<std::collections::BTreeMap<String, BTreeSet<String>>>,
    pub(crate) clients: Vec<(String, AccessProfile)>,
    /// The profile of a client no rule names.
    pub(crate) default: Option<AccessProfile>,
}

impl OAuthRules {
    /// Every scope the rules know: `[oauth.scopes]`'s names, else this server's three.
    pub(crate) fn scope_names(&self) -> Vec<String> {
        match &self.scopes {
            Some(map) => map.keys().cloned().collect(),
            None => [
                crate::oauth::SCOPE_READ,
                crate::oauth::SCOPE_WRITE,
                crate::oauth::SCOPE_SEND,
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }

    /// The scopes that grant `tool` (read-only or not).
    pub(crate) fn scopes_for(&self, tool: &str, tool_is_read_only: bool) -> Vec<String> {
        match &self.scopes {
            Some(map) => map
                .iter()
                .filter(|(_, tools)| tools.contains(tool))
                .map(|(s, _)| s.clone())
                .collect(),
            None => vec![
                if crate::oauth::SEND_TOOLS.contains(&tool) {
                    crate::oauth::SCOPE_SEND
                } else if tool_is_read_only {
                    crate::oauth::SCOPE_READ
                } else {
                    crate::oauth::SCOPE_WRITE
                }
                .to_owned(),
            ],
        }
    }

    /// The profile of a verified token: its client's rule (else the default), bounded by its
    /// scopes.
    pub(crate) fn profile(&self, token: crate::oauth::Verified) -> AccessProfile {
        let rule = token
            .client_id
            .as_deref()
            .and_then(|c| self.clients.iter().find(|(id, _)| id == c))
            .map(|(_, p)| p.clone())
            .or_else(|| self.default.clone())
            .unwrap_or(AccessProfile {
                name: String::new(),
                read_only: false,
                tools: None,
                rate: None,
                switchboard_integration: None,
                allow_override: false,
                allow_in_band_commands: false,
                dry_run: false,
                oauth: None,
            });
        let who = token
            .client_id
            .clone()
            .or_else(|| token.subject.clone())
            .unwrap_or_else(|| "unknown".into());
        AccessProfile {
            // Audit records and per-caller limits key on the client.
            name: format!("oauth:{who}"),
            oauth: Some(OAuthCaller {
                subject: token.subject,
                client_id: token.client_id,
                scopes: token.scopes,
            }),
            ..rule
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// No token, or not one of ours.
    Unauthenticated,
    /// An OAuth access token that does not verify: why.
    InvalidToken(String),
    /// The authorization server's metadata or keys cannot be had: why (for the log).
    VerifierUnavailable(String),
    /// Over the profile's inbound rate; retry after this long.
    RateLimited(Duration),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AccessError(pub String);

impl AccessPolicy {
    /// Builds the policy from `ZENDESK_MCP_TOKENS`-style entries (`name:token[:read-only]`,
    /// comma-separated) and/or a TOML tokens file (`[[tokens]]` with `name`, `token`, `access`,
    /// `tools`, `rate_limit`), plus the global bounds.
    pub fn build(
        inline: Option<&str>,
        file: Option<&Path>,
        read_only: bool,
        tools: Option<Vec<String>>,
        known_tools: &BTreeSet<String>,
    ) -> Result<Self, AccessError> {
        let mut specs = tokens_file::inline_specs(inline)?;
        let mut oauth_file = None;
        if let Some(path) = file {
            let parsed = tokens_file::read(path)?;
            // A file that names nobody would leave /mcp as open as no file at all.
            if parsed.tokens.is_empty() && parsed.oauth.is_none() {
                return Err(AccessError(format!(
                    "the tokens file (--tokens-file or ZENDESK_MCP_TOKENS_FILE) {} holds no [[tokens]] and no [oauth] rules, which would leave /mcp open: add a token (name and at least 16 random characters) or leave the setting out",
                    path.display()
                )));
            }
            specs.extend(parsed.tokens);
            oauth_file = parsed.oauth;
        }
        let check_tools = |what: &str, list: &[String]| tokens_file::known(known_tools, what, list);
        let tokens = tokens_file::tokens(specs, &check_tools)?;
        let oauth = match oauth_file {
            Some(f) => tokens_file::oauth_rules(f, &check_tools)?,
            None => OAuthRules::default(),
        };
        let tools = tools
            .map(|list| check_tools("--tools", &list))
            .transpose()?;
        Ok(Self {
            tokens,
            read_only,
            tools,
            oauth,
            ..Self::default()
        })
    }

    /// Who speaks for which switchboard integration: `--switchboard-integration`, each token's
    /// and each OAuth client rule's, as `(who, integration)` (for checking them against the
    /// switchboard).
    pub(crate) fn named_integrations(&self) -> Vec<(String, String)> {
        let server = self
            .switchboard_integration
            .iter()
            .map(|i| ("--switchboard-integration".to_owned(), i.clone()));
        let tokens = self.tokens.iter().filter_map(|t| {
            let i = t.profile.switchboard_integration.clone()?;
            Some((format!("token {:?}", t.profile.name), i))
        });
        let clients = (self.oauth.clients.iter())
            .map(|(id, p)| (format!("OAuth client {id:?}"), p))
            .chain(
                self.oauth
                    .default
                    .iter()
                    .map(|p| ("[oauth.default]".to_owned(), p)),
            )
            .filter_map(|(who, p)| Some((who, p.switchboard_integration.clone()?)));
        server.chain(tokens).chain(clients).collect()
    }

    /// What applies to a caller with `profile` (`None`: anonymous): the token's integration,
    /// else the server's; a dry run when either says so.
    pub(crate) fn rules(&self, profile: Option<&AccessProfile>) -> CallerRules {
        CallerRules {
            switchboard_integration: profile
                .and_then(|p| p.switchboard_integration.clone())
                .or_else(|| self.switchboard_integration.clone()),
            default_guard: !self.no_send_guard,
            allow_override: profile.is_some_and(|p| p.allow_override),
            allow_in_band_commands: profile.is_some_and(|p| p.allow_in_band_commands),
            dry_run: self.dry_run || profile.is_some_and(|p| p.dry_run),
        }
    }

    /// What tells two policies apart beyond their Debug form: each token's secret, as a
    /// keyed digest (never the secret itself), with the profile it binds.
    pub(crate) fn fingerprint(&self) -> Vec<(String, u64)> {
        use std::hash::BuildHasher;
        // One process-wide random key: the digests mean nothing outside this process.
        static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
        let key = KEY.get_or_init(std::hash::RandomState::new);
        self.tokens
            .iter()
            .map(|t| (t.profile.name.clone(), key.hash_one(t.secret.expose())))
            .collect()
    }

    /// True when callers must present a token (a static one, or an OAuth access token).
    pub fn requires_tokens(&self) -> bool {
        !self.tokens.is_empty() || self.resource_server.is_some()
    }

    /// Refuses an open endpoint on an address other machines can reach, unless allowed.
    pub fn check_bind(&self, addr: SocketAddr, allow_open: bool) -> Result<(), AccessError> {
        if self.requires_tokens() || addr.ip().is_loopback() || allow_open {
            return Ok(());
        }
        Err(AccessError(format!(
            "refusing to serve /mcp on {addr} without bearer tokens: anyone who can reach it could act on your customers' conversations. Set ZENDESK_MCP_TOKENS or ZENDESK_MCP_TOKENS_FILE, bind a loopback address, or pass --allow-unauthenticated if a proxy in front authenticates callers"
        )))
    }

    /// The profile of the caller presenting `authorization` (an `Authorization` header value).
    /// `Ok(None)` when no tokens are configured.
    /// Each token's requests are counted in `limits` (shared by every replica on Redis).
    pub(crate) async fn authenticate(
        &self,
        authorization: Option<&str>,
        limits: &dyn InboundLimits,
    ) -> Result<Option<Arc<AccessProfile>>, Refusal> {
        if !self.requires_tokens() {
            return Ok(None);
        }
        let presented = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(Refusal::Unauthenticated)?;
        // Compare with every token (in constant time each), so timing tells nothing of which
        // token came close.
        let mut found = None;
        for t in &self.tokens {
            if t.secret.matches(presented.as_bytes()) && found.is_none() {
                found = Some(t.profile.clone());
            }
        }
        let profile = match (found, &self.resource_server) {
            (Some(p), _) => p,
            (None, Some(rs)) => match rs.verify(presented).await {
                Ok(token) => Arc::new(self.oauth.profile(token)),
                Err(crate::oauth::TokenError::Invalid(why)) => {
                    return Err(Refusal::InvalidToken(why));
                }
                Err(crate::oauth::TokenError::Unavailable(why)) => {
                    return Err(Refusal::VerifierUnavailable(why));
                }
            },
            (None, None) => return Err(Refusal::Unauthenticated),
        };
        if let Some(rate) = profile.rate {
            match limits.take(&profile.name, rate).await {
                Ok(None) => {}
                Ok(Some(wait)) => return Err(Refusal::RateLimited(wait)),
                // A limit is protection, not correctness: without its store, let the call in.
                Err(e) => {
                    tracing::warn!(profile = %profile.name, "cannot apply the inbound rate limit: {e}")
                }
            }
        }
        Ok(Some(profile))
    }

    /// Whether `profile` (or an anonymous caller, `None`) may use `tool`.
    pub(crate) fn allows(
        &self,
        profile: Option<&AccessProfile>,
        tool: &str,
        tool_is_read_only: bool,
    ) -> bool {
        let read_only = self.read_only || profile.is_some_and(|p| p.read_only);
        if read_only && !tool_is_read_only {
            return false;
        }
        let in_set = |set: &Option<BTreeSet<String>>| set.as_ref().is_none_or(|s| s.contains(tool));
        in_set(&self.tools)
            && profile.is_none_or(|p| in_set(&p.tools))
            && self.scopes_allow(profile, tool, tool_is_read_only)
    }

    /// Whether an OAuth caller's scopes grant `tool` (anyone else: yes).
    pub(crate) fn scopes_allow(
        &self,
        profile: Option<&AccessProfile>,
        tool: &str,
        tool_is_read_only: bool,
    ) -> bool {
        match profile.and_then(|p| p.oauth.as_ref()) {
            None => true,
            Some(caller) => self
                .oauth
                .scopes_for(tool, tool_is_read_only)
                .iter()
                .any(|s| caller.scopes.contains(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::MemoryInboundLimits;

    fn known() -> BTreeSet<String> {
        ["list_conversations", "send_message"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn tokens_bind_profiles_and_the_flags_bound_them() {
        let limits = MemoryInboundLimits::default();
        let p = AccessPolicy::build(
            Some("reporting: 0123456789abcdef0123 : read-only, bot:fedcba9876543210fedc "),
            None,
            false,
            None,
            &known(),
        )
        .unwrap();
        let reporting = p
            .authenticate(Some("Bearer 0123456789abcdef0123"), &limits)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reporting.name, "reporting");
        assert!(p.allows(Some(&reporting), "list_conversations", true));
        assert!(!p.allows(Some(&reporting), "send_message", false));
        let bot = p
            .authenticate(Some("Bearer fedcba9876543210fedc"), &limits)
            .await
            .unwrap()
            .unwrap();
        assert!(p.allows(Some(&bot), "send_message", false));
        assert_eq!(
            p.authenticate(Some("Bearer nope"), &limits).await,
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            p.authenticate(None, &limits).await,
            Err(Refusal::Unauthenticated)
        );

        let bounded =
            AccessPolicy::build(Some("bot:fedcba9876543210fedc"), None, true, None, &known())
                .unwrap();
        let bot = bounded
            .authenticate(Some("Bearer fedcba9876543210fedc"), &limits)
            .await
            .unwrap()
            .unwrap();
        assert!(
            !bounded.allows(Some(&bot), "send_message", false),
            "--read-only bounds it"
        );
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let p = AccessPolicy::build(
            Some("bot:fedcba9876543210fedc"),
            None,
            false,
            None,
            &known(),
        )
        .unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("fedcba9876543210fedc"), "{shown}");
        assert!(shown.contains("bot"));
    }

    #[test]
    fn bad_entries_are_refused_with_a_reason() {
        let err = |inline: &str| {
            AccessPolicy::build(Some(inline), None, false, None, &known())
                .unwrap_err()
                .to_string()
        };
        assert!(err("short:abc").contains("too short"));
        assert!(err("x:0123456789abcdef0123:admin").contains("read-only or read-write"));
        assert!(err("nocolon").contains("NAME:TOKEN"));
        let tools = AccessPolicy::build(None, None, false, Some(vec!["nope".into()]), &known());
        assert!(tools.unwrap_err().to_string().contains("no tool \"nope\""));
    }

    #[test]
    fn an_open_endpoint_stays_on_loopback_unless_allowed() {
        let open = AccessPolicy::default();
        assert!(
            open.check_bind("127.0.0.1:8090".parse().unwrap(), false)
                .is_ok()
        );
        assert!(
            open.check_bind("0.0.0.0:8090".parse().unwrap(), false)
                .is_err()
        );
        assert!(
            open.check_bind("0.0.0.0:8090".parse().unwrap(), true)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn per_token_rate_limits_refuse_with_a_wait() {
        let dir = std::env::temp_dir().join(format!("zmcp-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokens.toml");
        std::fs::write(
            &file,
            "[[tokens]]\nname = \"slow\"\ntoken = \"0123456789abcdef0123\"\nrate_limit = \"1:2\"\n",
        )
        .unwrap();
        let p = AccessPolicy::build(None, Some(&file), false, None, &known()).unwrap();
        let limits = MemoryInboundLimits::default();
        let h = Some("Bearer 0123456789abcdef0123");
        assert!(p.authenticate(h, &limits).await.is_ok());
        assert!(p.authenticate(h, &limits).await.is_ok());
        assert!(
            matches!(p.authenticate(h, &limits).await, Err(Refusal::RateLimited(d)) if d > Duration::ZERO)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
