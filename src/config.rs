//! Typed settings for talking to Sunshine Conversations.
//!
//! Every value is looked up as [`crate::settings`] says: command-line flag, environment variable,
//! the optional TOML file (`--config FILE` or `ZENDESK_MCP_CONFIG`), then the default. Loading
//! yields a complete, checked [`Config`] or one [`ConfigError`] whose single line names the
//! variable and what it expects; `main` prints that line and exits non-zero.
//!
//! Secrets are [`Secret`]s, so neither `Debug` nor `Display` of a config can leak one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::secret::Secret;
use crate::settings::{self, Given, Raw, Setting, Sources};
use crate::sunco::auth::Scope;
use crate::sunco::ids::is_resource_id;

pub use crate::settings::{DEFAULT_API_URL, DEFAULT_JWT_LIFETIME_SECS, DEFAULT_TIMEOUT_SECS};

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
    pub(crate) fn as_str(self) -> &'static str {
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

pub(crate) use crate::settings::ConfigError;

fn err(variable: &'static str, note: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(variable, note, problem)
}

/// A required setting: its value and where it came from, or the error saying it is missing.
fn required(src: &Sources, setting: &Setting, expected: &str) -> Result<Raw, ConfigError> {
    src.pick(setting).ok_or_else(|| {
        ConfigError::new(setting.name(), "", format!("missing or blank: {expected}"))
    })
}

/// Seconds within `range`, or the setting's default.
fn secs(
    src: &Sources,
    setting: &Setting,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    src.parsed(setting, |v| match v.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "expected a whole number of seconds from {} to {}, got {v:?}",
            range.start(),
            range.end()
        )),
    })
    .map(Option::unwrap_or_default)
}

impl Config {
    /// Loads from the command line's flags, the process environment, the optional settings
    /// file and the defaults.
    pub fn load(given: Given) -> Result<Self, ConfigError> {
        Self::from_sources(&Sources::from_process(given)?)
    }

    /// Loads with an explicit environment (what [`Config::load`] does, testable).
    #[cfg(test)]
    pub(crate) fn load_from(
        given: Given,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        Self::from_sources(&Sources::read(given, env.clone())?)
    }

    /// The upstream's settings from `src`, checked.
    pub fn from_sources(src: &Sources) -> Result<Self, ConfigError> {
        let app_id = required(
            src,
            &settings::APP_ID,
            "expected the app id, 24 hex characters",
        )?;
        if !is_resource_id(app_id.value()) {
            return Err(err(
                "SUNCO_APP_ID",
                &app_id.note,
                "expected the app id, 24 hex characters (e.g. 5f748c1a2b5315fc007e7977)",
            ));
        }
        let key_id = required(
            src,
            &settings::KEY_ID,
            "expected an API key id (app_..., act_..., svc_... or int_...)",
        )?;
        let scope = Scope::of_key_id(key_id.value()).ok_or_else(|| {
            err(
                "SUNCO_KEY_ID",
                &key_id.note,
                "expected an API key id: app_, act_, svc_ or int_ followed by the key's id (e.g. app_5f748c1a2b5315fc007e7978)",
            )
        })?;
        let (key_secret, key_secret_file) = key_secret(src)?;
        let auth = match src.pick(&settings::AUTH) {
            None => AuthMode::Jwt,
            Some(raw) => match raw.value().to_ascii_lowercase().as_str() {
                "jwt" => AuthMode::Jwt,
                "basic" => AuthMode::Basic,
                _ => return Err(err("SUNCO_AUTH", &raw.note, "expected `jwt` or `basic`")),
            },
        };
        let api_url = match src.pick(&settings::API_URL) {
            None => parse_api_url(DEFAULT_API_URL, "")?,
            Some(raw) => parse_api_url(raw.value(), &raw.note)?,
        };
        let webhook_secret = src
            .pick(&settings::WEBHOOK_SECRET)
            .map(|r| Secret::new(r.value()));
        Ok(Config {
            app_id: app_id.value().to_owned(),
            key_id: key_id.value().to_owned(),
            key_secret,
            key_secret_file,
            scope,
            auth,
            api_url,
            webhook_secret,
            timeout: secs(src, &settings::TIMEOUT_SECS, 1..=600)?,
            jwt_lifetime: secs(src, &settings::JWT_LIFETIME_SECS, 0..=86_400)?,
        })
    }
}

/// The key secret, given itself or in a file (not both), and the file it came from.
fn key_secret(src: &Sources) -> Result<(Secret, Option<PathBuf>), ConfigError> {
    let secret = src.pick(&settings::KEY_SECRET);
    let secret_file = src.pick(&settings::KEY_SECRET_FILE);
    let (key_secret, key_secret_file) = match (secret, secret_file) {
        (Some(s), None) => (Secret::new(s.value()), None),
        (None, Some(f)) => {
            let path = PathBuf::from(f.value());
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
    Ok((key_secret, key_secret_file))
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
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
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
pub(crate) fn parse_api_url(raw: &str, note: &str) -> Result<Url, ConfigError> {
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

/// Reads a secret from a file, without the whitespace around it (trailing newlines included);
/// a file that holds only whitespace is refused, as an empty one is.
pub(crate) fn read_secret_file(path: &Path, note: &str) -> Result<Secret, ConfigError> {
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
    use std::collections::HashMap;

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
        let c = Config::load_from(Given::default(), &base_env()).unwrap();
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
        let flags = Given::default()
            .with(&settings::CONFIG, file.display().to_string())
            .with(&settings::KEY_ID, "int_flag");
        let c = Config::load_from(flags, &e).unwrap();
        assert_eq!(c.key_id, "int_flag");
        assert_eq!(c.scope, Scope::Integration);
        assert_eq!(c.auth, AuthMode::Basic);
        assert_eq!(c.timeout, Duration::from_secs(9));
        assert_eq!(c.api_url.as_str(), "https://acme.zendesk.com/sc");
        std::fs::write(&file, "colour = \"blue\"\n").unwrap();
        let e = Config::load_from(
            Given::default().with(&settings::CONFIG, file.display().to_string()),
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
            let err = Config::load_from(Given::default(), &e).unwrap_err();
            let line = err.to_string();
            assert_eq!(err.variable, *var, "{line}");
            assert!(line.contains(expect), "{line}");
            assert!(!line.contains('\n'));
        }
        let mut e = base_env();
        e.remove("SUNCO_APP_ID");
        assert_eq!(
            Config::load_from(Given::default(), &e)
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
        let c = Config::load_from(Given::default(), &e).unwrap();
        assert_eq!(c.key_secret.expose(), "from-file");
        assert_eq!(c.key_secret_file.as_deref(), Some(path.as_path()));
        e.insert("SUNCO_KEY_SECRET".into(), "x".into());
        let err = Config::load_from(Given::default(), &e).unwrap_err();
        assert!(err.to_string().contains("not both"));
        e.remove("SUNCO_KEY_SECRET");
        std::fs::write(&path, "  padded secret \r\n\n").unwrap();
        let c = Config::load_from(Given::default(), &e).unwrap();
        assert_eq!(c.key_secret.expose(), "padded secret");
        std::fs::write(&path, " \n\t\n").unwrap();
        let err = Config::load_from(Given::default(), &e).unwrap_err();
        assert!(err.to_string().contains("blank"), "{err}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn surrounding_whitespace_is_trimmed_and_blank_is_absent() {
        let mut e = base_env();
        e.insert("SUNCO_KEY_SECRET".into(), "  s3cret \n".into());
        e.insert("SUNCO_WEBHOOK_SECRET".into(), "   ".into());
        e.insert("SUNCO_APP_ID".into(), format!(" {APP} "));
        let c = Config::load_from(Given::default(), &e).unwrap();
        assert_eq!(c.key_secret.expose(), "s3cret");
        assert_eq!(c.app_id, APP);
        assert!(
            c.webhook_secret.is_none(),
            "a blank webhook secret is no secret"
        );
        let flags = Given::default().with(&settings::WEBHOOK_SECRET, " hook ");
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
