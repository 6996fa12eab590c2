//! Typed settings for talking to Sunshine Conversations.
//!
//! Every value is looked up in this order: command-line flag, environment variable, the optional
//! TOML file (`--config FILE` or `ZENDESK_MCP_CONFIG`), then the default. Loading either yields a
//! complete, checked [`Config`] or one [`ConfigError`] whose single line names the variable and
//! what it expects; `main` prints that line and exits non-zero.
//!
//! Secrets are [`Secret`]s, so neither `Debug` nor `Display` of a config can leak one.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use reqwest::Url;
use serde::Deserialize;

use crate::secret::Secret;
use crate::sunco::auth::Scope;
use crate::sunco::ids::is_resource_id;

pub const DEFAULT_API_URL: &str = "https://api.smooch.io";
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_JWT_LIFETIME_SECS: u64 = 3600;

/// How requests authenticate upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// HS256 JWTs minted from the key (the default).
    Jwt,
    /// HTTP Basic with key id and secret.
    Basic,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Jwt => "jwt",
            AuthMode::Basic => "basic",
        }
    }
}

/// The checked configuration.
#[derive(Clone)]
pub struct Config {
    pub app_id: String,
    pub key_id: String,
    pub key_secret: Secret,
    /// Where the secret was read from, when it came from a file (re-read on rotation).
    pub key_secret_file: Option<PathBuf>,
    pub scope: Scope,
    pub auth: AuthMode,
    /// Base URL without a trailing slash; request paths (`/v2/...`) are appended to it.
    pub api_url: Url,
    pub webhook_secret: Option<Secret>,
    /// Deadline of one tool call's upstream work.
    pub timeout: Duration,
    /// Lifetime of minted JWTs; `0` mints tokens without `exp`.
    pub jwt_lifetime: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("app_id", &self.app_id)
            .field("key_id", &self.key_id)
            .field("key_secret", &self.key_secret)
            .field("key_secret_file", &self.key_secret_file)
            .field("scope", &self.scope)
            .field("auth", &self.auth)
            .field("api_url", &self.api_url.as_str())
            .field("webhook_secret", &self.webhook_secret)
            .field("timeout", &self.timeout)
            .field("jwt_lifetime", &self.jwt_lifetime)
            .finish()
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = self.auth.as_str();
        writeln!(f, "SUNCO_APP_ID          {}", self.app_id)?;
        writeln!(
            f,
            "SUNCO_KEY_ID          {} ({} scope)",
            self.key_id,
            self.scope.as_str()
        )?;
        match &self.key_secret_file {
            Some(p) => writeln!(
                f,
                "SUNCO_KEY_SECRET_FILE {} (secret [redacted])",
                p.display()
            )?,
            None => writeln!(f, "SUNCO_KEY_SECRET      {}", self.key_secret)?,
        }
        writeln!(f, "SUNCO_AUTH            {auth}")?;
        writeln!(f, "SUNCO_API_URL         {}", self.api_url)?;
        writeln!(
            f,
            "SUNCO_WEBHOOK_SECRET  {}",
            if self.webhook_secret.is_some() {
                "[redacted]"
            } else {
                "(not set)"
            }
        )?;
        writeln!(f, "SUNCO_TIMEOUT_SECS    {}", self.timeout.as_secs())?;
        write!(f, "SUNCO_JWT_LIFETIME_SECS {}", self.jwt_lifetime.as_secs())
    }
}

/// One line: which variable, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable}{source_note}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    /// " (from --flag)", " (from the environment)", " (from FILE)" or "".
    pub source_note: String,
    pub problem: String,
}

/// The command-line flags that feed the configuration.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFlags {
    /// TOML file with any of the settings below (keys in snake_case: app_id, key_id, ...).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Sunshine Conversations app id [env: SUNCO_APP_ID]
    #[arg(long)]
    pub app_id: Option<String>,
    /// API key id: app_..., act_..., svc_... or int_... [env: SUNCO_KEY_ID]
    #[arg(long)]
    pub key_id: Option<String>,
    /// API key secret; prefer --key-secret-file, flags show in process lists [env: SUNCO_KEY_SECRET]
    #[arg(long)]
    pub key_secret: Option<String>,
    /// File holding the key secret; re-read when it changes [env: SUNCO_KEY_SECRET_FILE]
    #[arg(long, value_name = "FILE")]
    pub key_secret_file: Option<PathBuf>,
    /// Authentication scheme upstream [env: SUNCO_AUTH] [default: jwt]
    #[arg(long, value_enum)]
    pub auth: Option<AuthMode>,
    /// API base URL [env: SUNCO_API_URL] [default: https://api.smooch.io]
    #[arg(long)]
    pub api_url: Option<String>,
    /// Shared secret SunCo sends in X-API-Key on webhooks [env: SUNCO_WEBHOOK_SECRET]
    #[arg(long)]
    pub webhook_secret: Option<String>,
    /// Deadline for one call's upstream work, in seconds [env: SUNCO_TIMEOUT_SECS] [default: 30]
    #[arg(long)]
    pub timeout_secs: Option<String>,
    /// Lifetime of minted JWTs in seconds, 0 for none [env: SUNCO_JWT_LIFETIME_SECS] [default: 3600]
    #[arg(long)]
    pub jwt_lifetime_secs: Option<String>,
}

/// Keys of the TOML file. Unknown keys are an error, so a typo cannot silently fall back to a
/// default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileValues {
    app_id: Option<String>,
    key_id: Option<String>,
    key_secret: Option<String>,
    key_secret_file: Option<PathBuf>,
    auth: Option<String>,
    api_url: Option<String>,
    webhook_secret: Option<String>,
    timeout_secs: Option<u64>,
    jwt_lifetime_secs: Option<u64>,
    // Settings of the server itself, re-read on SIGHUP and when the file changes
    // ([`crate::live`]).
    server_name: Option<String>,
    server_description: Option<String>,
    instructions: Option<String>,
    rate_limit: Option<String>,
    read_only: Option<bool>,
    tools: Option<Vec<String>>,
    switchboard_integration: Option<String>,
    dry_run: Option<bool>,
}

/// The keys of the settings file that concern the server itself rather than the upstream: what
/// [`crate::live`] reloads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveFile {
    pub server_name: Option<String>,
    pub server_description: Option<String>,
    pub instructions: Option<String>,
    /// The upstream budget, `RPS[:BURST]`.
    pub rate_limit: Option<RequestRate>,
    pub read_only: Option<bool>,
    pub tools: Option<Vec<String>>,
    pub switchboard_integration: Option<String>,
    pub dry_run: Option<bool>,
    /// Whether the file sets `timeout_secs` (for the not-reloadable note when a flag pins it).
    pub timeout_secs: Option<u64>,
}

/// Reads the server's own keys of the settings file at `path` (the file is checked whole: an
/// unknown key is an error).
pub fn read_live_file(path: &Path) -> Result<LiveFile, ConfigError> {
    let f = read_file(path)?;
    let note = format!(" (from {})", path.display());
    let text = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let rate_limit = match text(f.rate_limit) {
        Some(r) => Some(RequestRate::parse(&r).map_err(|why| err("rate_limit", &note, why))?),
        None => None,
    };
    Ok(LiveFile {
        server_name: text(f.server_name),
        server_description: text(f.server_description),
        instructions: text(f.instructions),
        rate_limit,
        read_only: f.read_only,
        tools: f.tools,
        switchboard_integration: text(f.switchboard_integration),
        dry_run: f.dry_run,
        timeout_secs: f.timeout_secs,
    })
}

/// A raw value and where it came from.
struct Raw {
    value: String,
    note: String,
}

struct Sources<'a> {
    env: &'a HashMap<String, String>,
    file: FileValues,
    file_name: String,
}

impl Sources<'_> {
    fn pick(
        &self,
        variable: &'static str,
        flag_name: &str,
        flag: Option<String>,
        file: Option<String>,
    ) -> Option<Raw> {
        // Surrounding whitespace is never part of a value (a pasted secret, `KEY= value`), and
        // a value that is blank once trimmed counts as not given, wherever it comes from.
        let given = |v: &str| {
            let v = v.trim();
            (!v.is_empty()).then(|| v.to_owned())
        };
        if let Some(v) = flag.as_deref().and_then(given) {
            return Some(Raw {
                value: v,
                note: format!(" (from --{flag_name})"),
            });
        }
        if let Some(v) = self.env.get(variable).and_then(|v| given(v)) {
            return Some(Raw {
                value: v,
                note: " (from the environment)".to_owned(),
            });
        }
        file.as_deref().and_then(given).map(|v| Raw {
            value: v,
            note: format!(" (from {})", self.file_name),
        })
    }
}

fn err(variable: &'static str, note: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        source_note: note.to_owned(),
        problem: problem.into(),
    }
}

impl Config {
    /// Loads from flags, the process environment, the optional file and defaults.
    pub fn load(flags: ConfigFlags) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(flags, &env)
    }

    /// Loads with an explicit environment (what [`Config::load`] does, testable).
    pub fn load_from(
        flags: ConfigFlags,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let file_path = flags
            .config
            .clone()
            .or_else(|| env.get("ZENDESK_MCP_CONFIG").map(PathBuf::from));
        let (file, file_name) = match &file_path {
            Some(p) => (read_file(p)?, p.display().to_string()),
            None => (FileValues::default(), String::new()),
        };
        let src = Sources {
            env,
            file,
            file_name,
        };

        let app_id = src
            .pick(
                "SUNCO_APP_ID",
                "app-id",
                flags.app_id,
                src.file.app_id.clone(),
            )
            .ok_or_else(|| {
                err(
                    "SUNCO_APP_ID",
                    "",
                    "missing or blank: expected the app id, 24 hex characters",
                )
            })?;
        if !is_resource_id(&app_id.value) {
            return Err(err(
                "SUNCO_APP_ID",
                &app_id.note,
                "expected the app id, 24 hex characters (e.g. 5f748c1a2b5315fc007e7977)",
            ));
        }

        let key_id = src
            .pick(
                "SUNCO_KEY_ID",
                "key-id",
                flags.key_id,
                src.file.key_id.clone(),
            )
            .ok_or_else(|| {
                err(
                    "SUNCO_KEY_ID",
                    "",
                    "missing or blank: expected an API key id (app_..., act_..., svc_... or int_...)",
                )
            })?;
        let scope = Scope::of_key_id(&key_id.value).ok_or_else(|| {
            err(
                "SUNCO_KEY_ID",
                &key_id.note,
                "expected an API key id: app_, act_, svc_ or int_ followed by the key's id (e.g. app_5f748c1a2b5315fc007e7978)",
            )
        })?;

        let secret = src.pick(
            "SUNCO_KEY_SECRET",
            "key-secret",
            flags.key_secret,
            src.file.key_secret.clone(),
        );
        let secret_file = src.pick(
            "SUNCO_KEY_SECRET_FILE",
            "key-secret-file",
            flags.key_secret_file.map(|p| p.display().to_string()),
            src.file
                .key_secret_file
                .as_ref()
                .map(|p| p.display().to_string()),
        );
        let (key_secret, key_secret_file) = match (secret, secret_file) {
            (Some(s), None) => (Secret::new(s.value), None),
            (None, Some(f)) => {
                let path = PathBuf::from(&f.value);
                (read_secret_file(&path, &f.note)?, Some(path))
            }
            (Some(s), Some(_)) => {
                return Err(err(
                    "SUNCO_KEY_SECRET",
                    &s.note,
                    "set either SUNCO_KEY_SECRET or SUNCO_KEY_SECRET_FILE, not both",
                ));
            }
            (None, None) => {
                return Err(err(
                    "SUNCO_KEY_SECRET",
                    "",
                    "missing or blank: expected the API key secret (or SUNCO_KEY_SECRET_FILE naming a file that holds it)",
                ));
            }
        };
        if key_secret.is_empty() {
            return Err(err(
                "SUNCO_KEY_SECRET",
                "",
                "is empty: expected the API key secret",
            ));
        }

        let auth = match src.pick(
            "SUNCO_AUTH",
            "auth",
            flags.auth.map(|a| a.as_str().to_owned()),
            src.file.auth.clone(),
        ) {
            None => AuthMode::Jwt,
            Some(raw) => match raw.value.to_ascii_lowercase().as_str() {
                "jwt" => AuthMode::Jwt,
                "basic" => AuthMode::Basic,
                _ => return Err(err("SUNCO_AUTH", &raw.note, "expected `jwt` or `basic`")),
            },
        };

        let api_url = match src.pick(
            "SUNCO_API_URL",
            "api-url",
            flags.api_url,
            src.file.api_url.clone(),
        ) {
            None => parse_api_url(DEFAULT_API_URL, "")?,
            Some(raw) => parse_api_url(&raw.value, &raw.note)?,
        };

        let webhook_secret = src
            .pick(
                "SUNCO_WEBHOOK_SECRET",
                "webhook-secret",
                flags.webhook_secret,
                src.file.webhook_secret.clone(),
            )
            .map(|r| Secret::new(r.value));

        let timeout = parse_secs(
            &src,
            "SUNCO_TIMEOUT_SECS",
            "timeout-secs",
            flags.timeout_secs,
            src.file.timeout_secs,
            DEFAULT_TIMEOUT_SECS,
            1..=600,
        )?;
        let jwt_lifetime = parse_secs(
            &src,
            "SUNCO_JWT_LIFETIME_SECS",
            "jwt-lifetime-secs",
            flags.jwt_lifetime_secs,
            src.file.jwt_lifetime_secs,
            DEFAULT_JWT_LIFETIME_SECS,
            0..=86_400,
        )?;

        Ok(Config {
            app_id: app_id.value,
            key_id: key_id.value,
            key_secret,
            key_secret_file,
            scope,
            auth,
            api_url,
            webhook_secret,
            timeout,
            jwt_lifetime,
        })
    }
}

fn parse_secs(
    src: &Sources<'_>,
    variable: &'static str,
    flag_name: &str,
    flag: Option<String>,
    file: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    let Some(raw) = src.pick(variable, flag_name, flag, file.map(|n| n.to_string())) else {
        return Ok(Duration::from_secs(default));
    };
    match raw.value.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(err(
            variable,
            &raw.note,
            format!(
                "expected a whole number of seconds from {} to {}, got {:?}",
                range.start(),
                range.end(),
                raw.value
            ),
        )),
    }
}

/// A request rate with a burst, written `RPS[:BURST]` (`100`, `50:20`, `0.5:1`): the server's
/// upstream budget (`--rate-limit`) and a token's inbound limit (`rate_limit`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestRate {
    /// Requests per second, more than 0.
    pub per_second: f64,
    /// Requests that may go at once after a quiet period; the rate rounded up when not given.
    pub burst: u32,
}

impl RequestRate {
    /// Parses `RPS[:BURST]`; the error says what was expected.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "expected RPS[:BURST] such as 5 or 5:10, with RPS > 0 and BURST >= 1, got {raw:?}"
            )
        };
        let (rps, burst) = raw.split_once(':').unwrap_or((raw, ""));
        let per_second: f64 = rps.trim().parse().map_err(|_| bad())?;
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(bad());
        }
        let burst = match burst.trim() {
            "" => per_second.ceil().max(1.0) as u32,
            b => b.parse().ok().filter(|b| *b >= 1).ok_or_else(bad)?,
        };
        Ok(Self { per_second, burst })
    }
}

/// Parses `--bind`: `IP:PORT` (`127.0.0.1:8090`, `[::1]:8090`) or `HOST:PORT` with a name the
/// system resolves, such as `localhost:8090` (its first address is used). Port 0 picks a free
/// port.
pub fn parse_bind(raw: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let raw = raw.trim();
    if let Ok(addr) = raw.parse() {
        return Ok(addr);
    }
    let expected = "expected ADDRESS:PORT, such as 127.0.0.1:8090, [::1]:8090 or localhost:8090";
    let Some((host, port)) = raw.rsplit_once(':') else {
        return Err(format!("{raw:?} has no port: {expected}"));
    };
    if host.is_empty() {
        return Err(format!("{raw:?} has no address: {expected}"));
    }
    match port.parse::<u32>() {
        Ok(p) if p > u32::from(u16::MAX) => {
            return Err(format!("port {p} is out of range (0 to 65535): {expected}"));
        }
        Ok(_) => {}
        Err(_) => return Err(format!("{port:?} is not a port number: {expected}")),
    }
    let mut addrs = raw
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?} ({e}): {expected}"))?;
    // Prefer IPv4 for names such as localhost that resolve to both.
    let all: Vec<_> = addrs.by_ref().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| format!("{host:?} resolves to no address: {expected}"))
}

/// Accepts `https://api.smooch.io`, `https://api.eu-1.smooch.io`,
/// `https://{subdomain}.zendesk.com/sc` or any other https base; plain http only for loopback
/// (the simulator). The path prefix is kept; a trailing slash is dropped.
pub fn parse_api_url(raw: &str, note: &str) -> Result<Url, ConfigError> {
    let bad = |problem: &str| err("SUNCO_API_URL", note, problem.to_owned());
    let url = Url::parse(raw.trim()).map_err(|_| {
        bad("expected a base URL such as https://api.smooch.io or https://SUBDOMAIN.zendesk.com/sc")
    })?;
    let loopback = matches!(url.host(), Some(url::Host::Domain("localhost")))
        || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "expected https (plain http is only allowed for a loopback address such as the simulator)",
            ));
        }
        _ => return Err(bad("expected an https:// URL")),
    }
    if url.host().is_none() {
        return Err(bad("expected a URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("expected a base URL without ?query or #fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "expected a base URL without credentials; use SUNCO_KEY_ID and SUNCO_KEY_SECRET",
        ));
    }
    if url.path().split('/').any(|s| s == "v2") {
        return Err(bad(
            "expected the base URL without /v2 (request paths add it)",
        ));
    }
    let trimmed = url.as_str().trim_end_matches('/').to_owned();
    Url::parse(&trimmed).map_err(|_| bad("expected a valid base URL"))
}

fn read_file(path: &Path) -> Result<FileValues, ConfigError> {
    let note = format!(" ({})", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(
            "ZENDESK_MCP_CONFIG",
            &note,
            format!("cannot read the file: {e}"),
        )
    })?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().replace('\n', " ");
        err(
            "ZENDESK_MCP_CONFIG",
            &note,
            format!("not a valid settings file: {msg}"),
        )
    })
}

/// Reads a secret from a file, without the whitespace around it (trailing newlines included);
/// a file that holds only whitespace is refused, as an empty one is.
pub fn read_secret_file(path: &Path, note: &str) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(
            "SUNCO_KEY_SECRET_FILE",
            note,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(err(
            "SUNCO_KEY_SECRET_FILE",
            note,
            format!(
                "{} is empty or blank: expected the API key secret",
                path.display()
            ),
        ));
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "5f748c1a2b5315fc007e7977";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base_env() -> HashMap<String, String> {
        env(&[
            ("SUNCO_APP_ID", APP),
            ("SUNCO_KEY_ID", "app_abc"),
            ("SUNCO_KEY_SECRET", "topsecret"),
        ])
    }

    #[test]
    fn defaults_apply() {
        let c = Config::load_from(ConfigFlags::default(), &base_env()).unwrap();
        assert_eq!(c.auth, AuthMode::Jwt);
        assert_eq!(c.api_url.as_str(), "https://api.smooch.io/");
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.scope, Scope::App);
        assert!(!format!("{c:?}{c}").contains("topsecret"));
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = std::env::temp_dir().join(format!("zmm-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "auth = \"basic\"\napi_url = \"https://acme.zendesk.com/sc/\"\ntimeout_secs = 7\nkey_id = \"act_file\"\n",
        )
        .unwrap();
        let mut e = base_env();
        e.insert("SUNCO_TIMEOUT_SECS".into(), "9".into());
        let flags = ConfigFlags {
            config: Some(file.clone()),
            key_id: Some("int_flag".into()),
            ..Default::default()
        };
        let c = Config::load_from(flags, &e).unwrap();
        assert_eq!(c.key_id, "int_flag");
        assert_eq!(c.scope, Scope::Integration);
        assert_eq!(c.auth, AuthMode::Basic);
        assert_eq!(c.timeout, Duration::from_secs(9));
        assert_eq!(c.api_url.as_str(), "https://acme.zendesk.com/sc");
        std::fs::write(&file, "colour = \"blue\"\n").unwrap();
        let e = Config::load_from(
            ConfigFlags {
                config: Some(file),
                ..Default::default()
            },
            &base_env(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&str, &str, &str)] = &[
            ("SUNCO_APP_ID", "nope", "24 hex"),
            ("SUNCO_KEY_ID", "key_1", "app_"),
            ("SUNCO_KEY_ID", "app_", "followed by the key's id"),
            ("SUNCO_KEY_ID", "  int_  ", "followed by the key's id"),
            ("SUNCO_KEY_SECRET", " \t ", "missing or blank"),
            ("SUNCO_AUTH", "oauth", "`jwt` or `basic`"),
            ("SUNCO_API_URL", "http://api.smooch.io", "https"),
            ("SUNCO_API_URL", "https://api.smooch.io/v2", "without /v2"),
            ("SUNCO_TIMEOUT_SECS", "0", "from 1 to 600"),
        ];
        for (var, value, expect) in cases {
            let mut e = base_env();
            e.insert((*var).into(), (*value).into());
            let err = Config::load_from(ConfigFlags::default(), &e).unwrap_err();
            let line = err.to_string();
            assert_eq!(err.variable, *var, "{line}");
            assert!(line.contains(expect), "{line}");
            assert!(!line.contains('\n'));
        }
        let mut e = base_env();
        e.remove("SUNCO_APP_ID");
        assert_eq!(
            Config::load_from(ConfigFlags::default(), &e)
                .unwrap_err()
                .variable,
            "SUNCO_APP_ID"
        );
    }

    #[test]
    fn secret_from_file_and_not_both() {
        let path = std::env::temp_dir().join(format!("zmm-secret-{}", std::process::id()));
        std::fs::write(&path, "from-file\n").unwrap();
        let mut e = base_env();
        e.remove("SUNCO_KEY_SECRET");
        e.insert("SUNCO_KEY_SECRET_FILE".into(), path.display().to_string());
        let c = Config::load_from(ConfigFlags::default(), &e).unwrap();
        assert_eq!(c.key_secret.expose(), "from-file");
        assert_eq!(c.key_secret_file.as_deref(), Some(path.as_path()));
        e.insert("SUNCO_KEY_SECRET".into(), "x".into());
        let err = Config::load_from(ConfigFlags::default(), &e).unwrap_err();
        assert!(err.to_string().contains("not both"));
        e.remove("SUNCO_KEY_SECRET");
        std::fs::write(&path, "  padded secret \r\n\n").unwrap();
        let c = Config::load_from(ConfigFlags::default(), &e).unwrap();
        assert_eq!(c.key_secret.expose(), "padded secret");
        std::fs::write(&path, " \n\t\n").unwrap();
        let err = Config::load_from(ConfigFlags::default(), &e).unwrap_err();
        assert!(err.to_string().contains("blank"), "{err}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn surrounding_whitespace_is_trimmed_and_blank_is_absent() {
        let mut e = base_env();
        e.insert("SUNCO_KEY_SECRET".into(), "  s3cret \n".into());
        e.insert("SUNCO_WEBHOOK_SECRET".into(), "   ".into());
        e.insert("SUNCO_APP_ID".into(), format!(" {APP} "));
        let c = Config::load_from(ConfigFlags::default(), &e).unwrap();
        assert_eq!(c.key_secret.expose(), "s3cret");
        assert_eq!(c.app_id, APP);
        assert!(
            c.webhook_secret.is_none(),
            "a blank webhook secret is no secret"
        );
        let flags = ConfigFlags {
            webhook_secret: Some(" hook ".into()),
            ..Default::default()
        };
        let c = Config::load_from(flags, &e).unwrap();
        assert_eq!(
            c.webhook_secret.map(|s| s.expose().to_owned()).as_deref(),
            Some("hook")
        );
    }

    #[test]
    fn rates_with_bursts() {
        let r = RequestRate::parse("50:20").unwrap();
        assert_eq!((r.per_second, r.burst), (50.0, 20));
        assert_eq!(RequestRate::parse(" 2.5 ").unwrap().burst, 3);
        for bad in ["0", "-1", "x", "5:0", "5:x", "inf"] {
            assert!(RequestRate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bind_takes_addresses_and_names() {
        assert_eq!(
            parse_bind("localhost:8090").unwrap(),
            "127.0.0.1:8090".parse().unwrap()
        );
        assert_eq!(parse_bind("[::1]:0").unwrap(), "[::1]:0".parse().unwrap());
        assert_eq!(
            parse_bind(" 127.0.0.1:9 ").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert!(
            parse_bind("localhost:99999")
                .unwrap_err()
                .contains("out of range")
        );
        for bad in ["localhost", ":80", "localhost:port", "localhost:70000"] {
            let e = parse_bind(bad).unwrap_err();
            assert!(e.contains("ADDRESS:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn regional_and_loopback_urls() {
        for ok in [
            "https://api.eu-1.smooch.io",
            "https://acme.zendesk.com/sc",
            "http://127.0.0.1:8080",
            "http://localhost:9",
        ] {
            assert!(parse_api_url(ok, "").is_ok(), "{ok}");
        }
        for bad in [
            "ftp://x",
            "https://a.b/?x=1",
            "https://u:p@api.smooch.io",
            "not a url",
        ] {
            assert!(parse_api_url(bad, "").is_err(), "{bad}");
        }
    }
}
