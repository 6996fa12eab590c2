//! The tokens file (`--tokens-file`, TOML) and inline tokens (`ZENDESK_MCP_TOKENS`): read,
//! checked, and turned into the tokens and OAuth rules of an [`AccessPolicy`](super::AccessPolicy).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::{AccessError, AccessProfile, OAuthRules, Token};
use crate::config::RequestRate;
use crate::secret::Secret;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokensFile {
    #[serde(default)]
    pub(super) tokens: Vec<TokenSpec>,
    #[serde(default)]
    pub(super) oauth: Option<OAuthFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OAuthFile {
    /// scope → tools.
    #[serde(default)]
    scopes: Option<std::collections::BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    clients: Vec<ClientSpec>,
    #[serde(default)]
    default: Option<ClientSpec>,
}

/// An OAuth client's profile: a token's keys, keyed by `client_id` instead of a token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientSpec {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default = "read_write")]
    access: String,
    #[serde(default)]
    tools: Option<Vec<String>>,
    #[serde(default)]
    rate_limit: Option<String>,
    #[serde(default)]
    switchboard_integration: Option<String>,
    #[serde(default)]
    allow_override: bool,
    #[serde(default)]
    allow_in_band_commands: bool,
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenSpec {
    name: String,
    token: String,
    #[serde(default = "read_write")]
    access: String,
    #[serde(default)]
    tools: Option<Vec<String>>,
    /// `RPS[:BURST]`.
    #[serde(default)]
    rate_limit: Option<String>,
    #[serde(default)]
    switchboard_integration: Option<String>,
    #[serde(default)]
    allow_override: bool,
    /// May send SunCo's in-band commands (`%((…))%`) in text, each audited.
    #[serde(default)]
    allow_in_band_commands: bool,
    /// `live` (the default) or `dry-run`.
    #[serde(default)]
    mode: Option<String>,
}

impl ClientSpec {
    fn keys(&self) -> ProfileKeys<'_> {
        ProfileKeys {
            access: &self.access,
            tools: self.tools.as_deref(),
            rate_limit: self.rate_limit.as_deref(),
            switchboard_integration: self.switchboard_integration.as_deref(),
            allow_override: self.allow_override,
            allow_in_band_commands: self.allow_in_band_commands,
            mode: self.mode.as_deref(),
        }
    }
}

/// Checks a tool list (every name a tool), naming what it belongs to.
type ToolCheck<'a> = dyn Fn(&str, &[String]) -> Result<BTreeSet<String>, AccessError> + 'a;

/// The keys a token and an OAuth client rule share.
struct ProfileKeys<'a> {
    access: &'a str,
    tools: Option<&'a [String]>,
    rate_limit: Option<&'a str>,
    switchboard_integration: Option<&'a str>,
    allow_override: bool,
    allow_in_band_commands: bool,
    mode: Option<&'a str>,
}

/// A profile from its keys, checked; errors start with `what` (`token "bot"`, …).
fn profile_of(
    what: &str,
    name: String,
    k: ProfileKeys<'_>,
    check_tools: &ToolCheck<'_>,
) -> Result<AccessProfile, AccessError> {
    let tools = k.tools.map(|list| check_tools(what, list)).transpose()?;
    let dry_run = match k.mode.map(str::trim) {
        None | Some("live") => false,
        Some("dry-run") => true,
        Some(other) => {
            return Err(AccessError(format!(
                "{what}: mode {other:?} must be live or dry-run"
            )));
        }
    };
    let switchboard_integration = match k.switchboard_integration {
        Some(s) if s.trim().is_empty() => {
            return Err(AccessError(format!(
                "{what}: switchboard_integration is empty: name the integration (id, name or type) or leave it out"
            )));
        }
        other => other.map(|s| s.trim().to_owned()),
    };
    let read_only = match k.access {
        "read-only" => true,
        "read-write" => false,
        other => {
            return Err(AccessError(format!(
                "{what}: access {other:?} must be read-only or read-write"
            )));
        }
    };
    let rate = k
        .rate_limit
        .map(|r| {
            RequestRate::parse(r).map_err(|why| AccessError(format!("{what}: rate_limit: {why}")))
        })
        .transpose()?;
    Ok(AccessProfile {
        name,
        read_only,
        tools,
        rate,
        switchboard_integration,
        allow_override: k.allow_override,
        allow_in_band_commands: k.allow_in_band_commands,
        dry_run,
        oauth: None,
    })
}

fn read_write() -> String {
    "read-write".to_owned()
}

/// Every tool in `list` is a tool (`what` names the list in the error).
pub(super) fn known(
    known_tools: &BTreeSet<String>,
    what: &str,
    list: &[String],
) -> Result<BTreeSet<String>, AccessError> {
    let set: BTreeSet<String> = list.iter().map(|t| t.trim().to_owned()).collect();
    if let Some(unknown) = set.iter().find(|t| !known_tools.contains(*t)) {
        return Err(AccessError(format!(
            "{what}: there is no tool {unknown:?} (tools: {})",
            known_tools.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(set)
}

/// `ZENDESK_MCP_TOKENS`-style entries (`name:token[:read-only]`, comma-separated).
pub(super) fn inline_specs(inline: Option<&str>) -> Result<Vec<TokenSpec>, AccessError> {
    let mut specs = Vec::new();
    for entry in inline
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        // Spaces around a part are never part of it (`a: tok, b:tok2 :read-only`).
        let mut parts = entry.splitn(3, ':').map(str::trim);
        let (Some(name), Some(token)) = (parts.next(), parts.next()) else {
            return Err(AccessError(format!(
                "ZENDESK_MCP_TOKENS: {:?} must be NAME:TOKEN or NAME:TOKEN:read-only",
                entry.split(':').next().unwrap_or_default()
            )));
        };
        specs.push(TokenSpec {
            name: name.to_owned(),
            token: token.to_owned(),
            access: parts.next().unwrap_or("read-write").to_owned(),
            tools: None,
            rate_limit: None,
            switchboard_integration: None,
            allow_override: false,
            allow_in_band_commands: false,
            mode: None,
        });
    }
    Ok(specs)
}

/// The tokens file at `path` (`[[tokens]]` with `name`, `token`, `access`, `tools`,
/// `rate_limit`, ..., and the `[oauth]` rules).
pub(super) fn read(path: &Path) -> Result<TokensFile, AccessError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        AccessError(format!(
            "the tokens file (--tokens-file or ZENDESK_MCP_TOKENS_FILE) {}: cannot read it: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        AccessError(format!(
            "the tokens file (--tokens-file or ZENDESK_MCP_TOKENS_FILE) {} is not a tokens file: {}",
            path.display(),
            e.message()
        ))
    })
}

/// The tokens, each with its profile: names unique, secrets long enough.
pub(super) fn tokens(
    specs: Vec<TokenSpec>,
    check_tools: &ToolCheck<'_>,
) -> Result<Vec<Token>, AccessError> {
    let mut tokens = Vec::new();
    let mut names = BTreeSet::new();
    for spec in specs {
        if spec.name.is_empty() || !names.insert(spec.name.clone()) {
            return Err(AccessError(format!(
                "token names must be non-empty and unique ({:?})",
                spec.name
            )));
        }
        let token = spec.token.trim();
        if let Some(other) = tokens.iter().find(|t: &&Token| t.secret.expose() == token) {
            return Err(AccessError(format!(
                "tokens {:?} and {:?} have the same secret, so a caller holding it could not be told apart: give each its own token",
                other.profile.name, spec.name
            )));
        }
        if token.len() < 16 {
            return Err(AccessError(format!(
                "token {:?} is too short: use at least 16 random characters",
                spec.name
            )));
        }
        let profile = profile_of(
            &format!("token {:?}", spec.name),
            spec.name.clone(),
            ProfileKeys {
                access: &spec.access,
                tools: spec.tools.as_deref(),
                rate_limit: spec.rate_limit.as_deref(),
                switchboard_integration: spec.switchboard_integration.as_deref(),
                allow_override: spec.allow_override,
                allow_in_band_commands: spec.allow_in_band_commands,
                mode: spec.mode.as_deref(),
            },
            check_tools,
        )?;
        tokens.push(Token {
            secret: Secret::new(token),
            profile: Arc::new(profile),
        });
    }
    Ok(tokens)
}

/// The `[oauth]` rules: which tools each scope grants, each client's profile, the default.
pub(super) fn oauth_rules(
    f: OAuthFile,
    check_tools: &ToolCheck<'_>,
) -> Result<OAuthRules, AccessError> {
    let mut oauth = OAuthRules::default();
    if let Some(map) = f.scopes {
        let mut scopes = std::collections::BTreeMap::new();
        for (scope, list) in map {
            scopes.insert(
                scope.clone(),
                check_tools(&format!("oauth.scopes.{scope:?}"), &list)?,
            );
        }
        oauth.scopes = Some(scopes);
    }
    let keys = ClientSpec::keys;
    for c in &f.clients {
        let id = c
            .client_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| AccessError("every [[oauth.clients]] needs its client_id".to_owned()))?;
        if oauth.clients.iter().any(|(known, _)| known == id) {
            return Err(AccessError(format!(
                "oauth client {id:?} has two rules: keep one"
            )));
        }
        let what = format!("oauth client {id:?}");
        let profile = profile_of(&what, id.to_owned(), keys(c), check_tools)?;
        oauth.clients.push((id.to_owned(), profile));
    }
    if let Some(d) = &f.default {
        if d.client_id.is_some() {
            return Err(AccessError(
                "[oauth.default] is for clients no rule names: leave client_id out".into(),
            ));
        }
        oauth.default = Some(profile_of(
            "[oauth.default]",
            "default".into(),
            keys(d),
            check_tools,
        )?);
    }
    Ok(oauth)
}
