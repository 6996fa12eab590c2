//! Every setting, declared once: its key in the settings file, its flag, its environment
//! variable, its default, and whether a reload applies it ([`crate::live`]). The command line
//! is made from these declarations ([`ServerFlags`], [`UpstreamFlags`]), and [`Sources::pick`]
//! is the one place where the precedence is decided: a flag beats the environment, which beats
//! the settings file (`--config FILE` or `ZENDESK_MCP_CONFIG`), which beats the default.
//!
//! A new setting is one declaration here (and in [`ALL`]) plus its use: the typed readers of
//! [`Sources`] name the setting in every error, with where the value came from.
//!
//! Surrounding whitespace is never part of a value (a pasted secret, `KEY= value`), and a value
//! that is blank once trimmed counts as not given, wherever it comes from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod declared;
mod flags;

pub use declared::*;
pub use flags::{Given, ServerFlags, UpstreamFlags};

/// Which commands take a setting's flag: `config` takes the upstream's, `serve` and `stdio`
/// take both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// How the server talks to Sunshine Conversations.
    Upstream,
    /// The server itself.
    Server,
}

/// How a setting is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One value.
    Value,
    /// On or off: a flag without a value, `true`/`false` in the file and the environment.
    Switch,
    /// Several values: a flag given again or comma-separated, a list in the file (given empty,
    /// it is an empty list, not absent).
    List,
    /// Several values: a flag given again (a value may hold commas), a list in the file.
    Repeated,
}

/// One setting and where it may be given.
#[derive(Debug, PartialEq, Eq)]
pub struct Setting {
    /// Its name: the key in the settings file, when the file may give it.
    pub key: &'static str,
    pub group: Group,
    pub kind: Kind,
    /// The flag, without its dashes.
    pub flag: Option<&'static str>,
    /// The environment variable.
    pub(crate) env: Option<&'static str>,
    /// Whether the settings file may give it.
    pub(crate) in_file: bool,
    /// What it is when nothing gives it, as it would be written.
    pub(crate) default: Option<&'static str>,
    /// Whether a reload of the settings file applies it to the running server.
    pub(crate) reloads: bool,
    /// The flag's placeholder in `--help`.
    pub value_name: &'static str,
    /// One sentence for `--help`.
    pub(crate) help: &'static str,
}

impl Setting {
    const fn new(key: &'static str, group: Group, help: &'static str) -> Self {
        Self {
            key,
            group,
            kind: Kind::Value,
            flag: None,
            env: None,
            in_file: false,
            default: None,
            reloads: false,
            value_name: "VALUE",
            help,
        }
    }

    const fn flag(mut self, flag: &'static str, value_name: &'static str) -> Self {
        self.flag = Some(flag);
        self.value_name = value_name;
        self
    }

    const fn switch(mut self, flag: &'static str) -> Self {
        self.flag = Some(flag);
        self.kind = Kind::Switch;
        self
    }

    const fn list(mut self) -> Self {
        self.kind = Kind::List;
        self
    }

    const fn repeated(mut self) -> Self {
        self.kind = Kind::Repeated;
        self
    }

    const fn env(mut self, env: &'static str) -> Self {
        self.env = Some(env);
        self
    }

    const fn file(mut self) -> Self {
        self.in_file = true;
        self
    }

    const fn reloads(mut self) -> Self {
        self.in_file = true;
        self.reloads = true;
        self
    }

    const fn default(mut self, default: &'static str) -> Self {
        self.default = Some(default);
        self
    }

    /// The name an error gives it: its environment variable, else its flag, else its key.
    pub fn name(&self) -> String {
        match (self.env, self.flag) {
            (Some(env), _) => env.to_owned(),
            (None, Some(flag)) => format!("--{flag}"),
            (None, None) => self.key.to_owned(),
        }
    }

    /// The name an error about a value from `from` gives it: its environment variable when it
    /// has one, else the file key for a file's value, else its flag.
    pub fn name_for(&self, from: Option<&From>) -> String {
        match (self.env, from) {
            (None, Some(From::File(_))) => self.key.to_owned(),
            _ => self.name(),
        }
    }
}

/// One line: which setting, where its value came from, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable}{source_note}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    /// " (from --flag)", " (from the environment)", " (from FILE)" or "".
    pub source_note: String,
    pub(crate) problem: String,
}

impl ConfigError {
    pub(crate) fn new(variable: impl Into<String>, note: &str, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            source_note: note.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// The flag, without its dashes.
    Flag(&'static str),
    Environment,
    /// The settings file, by name.
    File(String),
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    /// The value, trimmed (the items of a list, each trimmed).
    pub values: Vec<String>,
    pub from: From,
    /// " (from --flag)", " (from the environment)" or " (from FILE)".
    pub note: String,
}

impl Raw {
    /// The value (the first, for a list).
    pub fn value(&self) -> &str {
        self.values.first().map_or("", String::as_str)
    }
}

/// The settings file as read: its name and its keys.
#[derive(Debug, Clone)]
struct File {
    name: String,
    table: toml::Table,
}

/// Where the settings come from: the command line, the environment and the settings file.
#[derive(Clone, Default)]
pub struct Sources {
    given: Given,
    env: HashMap<String, String>,
    file: Option<File>,
}

impl std::fmt::Debug for Sources {
    /// The file's name only: the flags and the environment hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("file", &self.file.as_ref().map(|f| &f.name))
            .finish_non_exhaustive()
    }
}

impl Sources {
    /// The command line and the environment, and the settings file they name (read now: an
    /// unknown key or a file that is not TOML is an error).
    pub(crate) fn read(given: Given, env: HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut sources = Self {
            given,
            env,
            file: None,
        };
        if let Some(path) = sources.config_file() {
            sources.file = Some(read_file(&path)?);
        }
        Ok(sources)
    }

    /// The command line and the environment, without reading the settings file (to learn
    /// which files they name).
    pub fn unread(given: Given, env: HashMap<String, String>) -> Self {
        Self {
            given,
            env,
            file: None,
        }
    }

    /// The command line and this process's environment.
    pub fn from_process(given: Given) -> Result<Self, ConfigError> {
        Self::read(given, std::env::vars().collect())
    }

    /// The settings file's path, when one is named.
    pub(crate) fn config_file(&self) -> Option<PathBuf> {
        self.pick(&CONFIG).map(|r| PathBuf::from(r.value()))
    }

    /// What the command line gave, and the environment (to read the sources again).
    pub fn parts(&self) -> (&Given, &HashMap<String, String>) {
        (&self.given, &self.env)
    }

    /// `setting`'s value and where it came from: the flag, else the environment variable, else
    /// the settings file; `None` when none gives it (its default then applies).
    pub fn pick(&self, setting: &Setting) -> Option<Raw> {
        // A single value that is blank is not given; a list given is given, empty or not (its
        // items trimmed, kept as given for the use to judge).
        let list = matches!(setting.kind, Kind::List | Kind::Repeated);
        let given = |values: Vec<String>, from: From| {
            let values: Vec<String> = values
                .iter()
                .map(|v| v.trim().to_owned())
                .filter(|v| list || !v.is_empty())
                .collect();
            let note = match &from {
                From::Flag(flag) => format!(" (from --{flag})"),
                From::Environment => " (from the environment)".to_owned(),
                From::File(name) => format!(" (from {name})"),
            };
            (list || !values.is_empty()).then_some(Raw { values, from, note })
        };
        let from_flag = (self.given.0.get(setting.key).cloned())
            .and_then(|v| given(v, From::Flag(setting.flag.unwrap_or(setting.key))));
        from_flag
            .or_else(|| {
                let v = self.env.get(setting.env?)?;
                let values = match setting.kind {
                    Kind::List => v.split(',').map(str::to_owned).collect(),
                    _ => vec![v.clone()],
                };
                given(values, From::Environment)
            })
            .or_else(|| {
                let file = self.file.as_ref().filter(|_| setting.in_file)?;
                let values = match file.table.get(setting.key)? {
                    toml::Value::String(s) => vec![s.clone()],
                    toml::Value::Array(items) => items.iter().map(toml_text).collect(),
                    other => vec![toml_text(other)],
                };
                given(values, From::File(file.name.clone()))
            })
    }

    /// The flags of the command line that were given blank (`--tokens-file ""`): for a
    /// setting of the server, that is a mistake to refuse, not "none".
    pub fn blank_flags(&self, group: Group) -> Vec<&'static Setting> {
        ALL.iter()
            .copied()
            .filter(|s| s.group == group && s.flag.is_some() && s.kind == Kind::Value)
            .filter(|s| {
                (self.given.0.get(s.key)).is_some_and(|v| v.iter().all(|v| v.trim().is_empty()))
            })
            .collect()
    }

    /// Whether the command line or the environment gives `setting` (and so pins it over the
    /// file).
    fn pinned_by(&self, setting: &Setting) -> Option<String> {
        if !matches!(
            self.pick(setting).map(|r| r.from),
            Some(From::Flag(_) | From::Environment)
        ) {
            return None;
        }
        let by: Vec<String> = [
            setting.flag.map(|f| format!("--{f}")),
            setting.env.map(str::to_owned),
        ]
        .into_iter()
        .flatten()
        .collect();
        Some(by.join(" or "))
    }

    /// The settings file's reloadable values that a flag or a variable pins, one line each.
    pub(crate) fn pinned(&self) -> Vec<String> {
        let Some(file) = &self.file else {
            return vec![];
        };
        ALL.iter()
            .filter(|s| s.reloads && file.table.contains_key(s.key))
            .filter_map(|s| {
                let by = self.pinned_by(s)?;
                Some(format!(
                    "{} in the settings file is not reloadable: {by} sets it",
                    s.key
                ))
            })
            .collect()
    }

    /// `setting` as text, or its default; `None` when neither is there.
    pub(crate) fn text(&self, setting: &Setting) -> Option<String> {
        self.pick(setting)
            .map(|r| r.value().to_owned())
            .or_else(|| setting.default.map(str::to_owned))
    }

    /// `setting` as a list (its items trimmed, none blank).
    pub fn list(&self, setting: &Setting) -> Option<Vec<String>> {
        self.pick(setting).map(|r| r.values)
    }

    /// A switch: on or off.
    pub fn switch(&self, setting: &Setting) -> Result<bool, ConfigError> {
        let Some(raw) = self.pick(setting) else {
            return Ok(setting.default == Some("true"));
        };
        match raw.value().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(
                setting.name_for(Some(&raw.from)),
                &raw.note,
                format!("expected true or false, got {:?}", raw.value()),
            )),
        }
    }

    /// `setting` read by `parse`, or its default read the same way; `None` when neither is
    /// there. An error names the setting and where the value came from.
    pub fn parsed<T>(
        &self,
        setting: &Setting,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let (value, note, from) = match self.pick(setting) {
            Some(raw) => (raw.value().to_owned(), raw.note, Some(raw.from)),
            None => match setting.default {
                Some(d) => (d.to_owned(), String::new(), None),
                None => return Ok(None),
            },
        };
        parse(&value)
            .map(Some)
            .map_err(|why| ConfigError::new(setting.name_for(from.as_ref()), &note, why))
    }

    /// A whole number within `range` (or the default).
    pub fn number<T>(
        &self,
        setting: &Setting,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        self.parsed(setting, |v| match v.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(format!(
                "expected a whole number from {} to {}, got {v:?}",
                range.start(),
                range.end()
            )),
        })
    }
}

/// A TOML value as the text a flag would give.
fn toml_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        // A table or a list where one value belongs: nothing a setting reads as given.
        toml::Value::Array(_) | toml::Value::Table(_) => String::new(),
    }
}

/// Reads the settings file: TOML whose every key is a setting the file may give.
fn read_file(path: &Path) -> Result<File, ConfigError> {
    let note = format!(" ({})", path.display());
    let invalid = |why: String| ConfigError::new(CONFIG.name(), &note, why);
    let text =
        std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read the file: {e}")))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let msg = e.message().replace('\n', " ");
        invalid(format!("not a valid settings file: {msg}"))
    })?;
    if let Some(unknown) = table
        .keys()
        .find(|k| !ALL.iter().any(|s| s.in_file && s.key == k.as_str()))
    {
        let known: Vec<String> = ALL
            .iter()
            .filter(|s| s.in_file)
            .map(|s| format!("`{}`", s.key))
            .collect();
        return Err(invalid(format!(
            "not a valid settings file: unknown field `{unknown}`, expected one of {}",
            known.join(", ")
        )));
    }
    Ok(File {
        name: path.display().to_string(),
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_setting_is_declared_once_and_named_consistently() {
        let mut keys = std::collections::BTreeSet::new();
        for s in ALL {
            assert!(keys.insert(s.key), "{} declared twice", s.key);
            if let Some(flag) = s.flag {
                assert_eq!(flag.replace('-', "_"), s.key, "the flag names the key");
            }
            assert!(
                s.flag.is_some() || s.env.is_some() || s.in_file,
                "{} can be given nowhere",
                s.key
            );
            assert!(!s.reloads || s.in_file, "{} reloads from the file", s.key);
        }
    }

    #[test]
    fn declared_defaults_are_the_ones_the_code_uses() {
        let default = |s: &Setting| s.default.expect("a default");
        assert_eq!(default(&TIMEOUT_SECS), DEFAULT_TIMEOUT_SECS.to_string());
        assert_eq!(
            default(&JWT_LIFETIME_SECS),
            DEFAULT_JWT_LIFETIME_SECS.to_string()
        );
    }

    fn given_file(file: &Path) -> Given {
        Given::default().with(&CONFIG, file.display().to_string())
    }

    #[test]
    fn a_flag_beats_the_environment_beats_the_file_beats_the_default() {
        let dir = std::env::temp_dir().join(format!("zmm-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.toml");
        std::fs::write(
            &file,
            "timeout_secs = 7\nrate_limit = \"5:5\"\ntools = [\"a\", \" b \"]\n",
        )
        .unwrap();
        let given = Given::default().with(&CONFIG, file.display().to_string());
        let s = Sources::read(given.clone(), env(&[("SUNCO_TIMEOUT_SECS", "9")])).unwrap();
        assert_eq!(s.text(&TIMEOUT_SECS).as_deref(), Some("9"));
        assert_eq!(s.text(&RATE_LIMIT).as_deref(), Some("5:5"));
        assert_eq!(s.list(&TOOLS), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(s.text(&SHUTDOWN_GRACE).as_deref(), Some("30"));
        assert_eq!(
            s.pinned(),
            vec![
                "timeout_secs in the settings file is not reloadable: --timeout-secs or SUNCO_TIMEOUT_SECS sets it"
            ]
        );
        let s = Sources::read(
            given.with(&TIMEOUT_SECS, " 3 "),
            env(&[("SUNCO_TIMEOUT_SECS", "9")]),
        )
        .unwrap();
        let raw = s.pick(&TIMEOUT_SECS).unwrap();
        assert_eq!(
            (raw.value(), raw.note.as_str()),
            ("3", " (from --timeout-secs)")
        );
        let e = s.number::<u32>(&MCP_CONCURRENCY, 1..=10).unwrap_err();
        assert_eq!(e.variable, "--mcp-concurrency");
        // An empty list is given (no tools), not absent (every tool).
        std::fs::write(&file, "tools = []\n").unwrap();
        let s = Sources::read(given_file(&file), env(&[])).unwrap();
        assert_eq!(s.list(&TOOLS), Some(vec![]));
        let e = Sources::read(given_file(&file), env(&[]))
            .unwrap()
            .parsed(&RATE_LIMIT, |_| Err::<(), _>("no".to_owned()));
        assert!(e.is_ok(), "an absent setting without a default is not read");
        std::fs::write(&file, "rate_limit = \"x\"\n").unwrap();
        let e = Sources::read(given_file(&file), env(&[]))
            .unwrap()
            .parsed(&RATE_LIMIT, |_| Err::<(), _>("no".to_owned()))
            .unwrap_err();
        assert_eq!(
            e.variable, "rate_limit",
            "a file's value is named by its key"
        );
        let blank = Sources::unread(Given::default().with(&TOKENS_FILE, " "), env(&[]));
        assert_eq!(blank.blank_flags(Group::Server), vec![&TOKENS_FILE]);
        std::fs::write(&file, "bind = \"0.0.0.0:1\"\n").unwrap();
        let e = Sources::read(
            Given::default().with(&CONFIG, file.display().to_string()),
            env(&[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `bind`"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
