//! Settings edited without a restart: the settings file (`--config`) and the tokens file
//! (`--tokens-file`) are re-read on SIGHUP and when either changes, and what they say is applied
//! to the running server.
//!
//! What reloads: tokens and their profiles (tool sets, read-only, inbound limits, the send
//! guard's integration, dry runs), the bounds on every caller (`read_only`, `tools`,
//! `switchboard_integration`, `dry_run`), the upstream budget (`rate_limit`) and timeout
//! (`timeout_secs`), and what the server tells clients (`server_name`, `server_description`,
//! `instructions`). Flags and the environment take precedence over the file after a reload as
//! at start: a file value a flag or variable pins is logged as not reloadable. An invalid file
//! keeps the settings in force, logs why and counts it (`mcp.server.config.reloads`
//! {outcome=invalid}). A call takes the settings once, when it starts, and finishes under them.
//! Sessions are told when the tool list may have changed (`notifications/tools/list_changed`).
//! With several replicas each re-reads its own file; the upstream budget lives in the shared
//! store, so a reloaded `rate_limit` applies to the fleet, and each replica logs what it uses.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rmcp::RoleServer;
use rmcp::service::Peer;

use crate::access::AccessPolicy;
use crate::actors::Actors;
use crate::config::{Config, RequestRate};
use crate::settings::{self, Given};

/// The server name clients see unless the settings file names another.
pub(crate) use crate::settings::DEFAULT_SERVER_NAME;

/// The settings a call takes when it starts.
#[derive(Debug)]
pub struct LiveSettings {
    pub access: Arc<AccessPolicy>,
    /// `serverInfo.name`.
    pub(crate) server_name: String,
    /// `serverInfo.description`.
    pub(crate) server_description: Option<String>,
    /// The operator's words, added after the server's own instructions.
    pub(crate) instructions: Option<String>,
    /// The upstream deadline of one call.
    pub(crate) timeout: Duration,
    /// The upstream budget.
    pub rate: RequestRate,
    /// `claim_conversation`'s quietSeconds and leaseSeconds when a call does not say.
    pub(crate) claim_quiet: Duration,
    pub(crate) claim_lease: Duration,
    /// The largest tool answer, in characters of its JSON ([`crate::mcp`]'s bound).
    pub(crate) answer_max_chars: usize,
}

impl LiveSettings {
    /// Settings that never change (tests, and a server built from options alone).
    pub(crate) fn fixed(access: Arc<AccessPolicy>, timeout: Duration, rate: RequestRate) -> Self {
        Self {
            access,
            server_name: DEFAULT_SERVER_NAME.to_owned(),
            server_description: None,
            instructions: None,
            timeout,
            rate,
            claim_quiet: DEFAULT_CLAIM_QUIET,
            claim_lease: DEFAULT_CLAIM_LEASE,
            answer_max_chars: DEFAULT_ANSWER_MAX_CHARS,
        }
    }
}

/// `claim_quiet_seconds` and `claim_lease_seconds` by default.
const DEFAULT_CLAIM_QUIET: Duration = Duration::from_secs(2);
const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(60);
/// `answer_max_chars` by default: about 7,500 tokens of JSON at 4 characters a token, and
/// under 25,000 (the most clients accept) even when a client reads both the text and the
/// structured content at the worst rate JSON of ids gets (2.5 characters a token).
const DEFAULT_ANSWER_MAX_CHARS: usize = 30_000;

/// Where the settings come from: the command line and the environment as they were at start,
/// and the files they name, read again at every reload ([`crate::settings`]).
#[derive(Clone)]
pub struct Sources {
    /// What the command line gave.
    pub given: Given,
    /// The environment at start.
    pub env: HashMap<String, String>,
    /// With the embedded simulator the upstream is not configured from the sources: its
    /// timeout, fixed.
    pub fixed_timeout: Option<Duration>,
    pub known_tools: std::collections::BTreeSet<String>,
    /// `--oauth-issuer` with `--public-url`: kept across reloads (its key cache too).
    pub resource_server: Option<Arc<crate::oauth::ResourceServer>>,
}

impl std::fmt::Debug for Sources {
    /// The files only: the flags, the environment and the inline tokens hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [config_file, tokens_file] = self.files();
        f.debug_struct("Sources")
            .field("config_file", &config_file)
            .field("tokens_file", &tokens_file)
            .finish_non_exhaustive()
    }
}

/// One reading of the sources.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) settings: LiveSettings,
    /// File values a flag or variable pins, one line each.
    pub(crate) pinned: Vec<String>,
}

impl Sources {
    /// Reads every source; an error names the file and what is wrong in it.
    pub(crate) fn load(&self) -> Result<Loaded, String> {
        let src = settings::Sources::read(self.given.clone(), self.env.clone())
            .map_err(|e| e.to_string())?;
        // The whole settings file is checked as at start, the upstream's keys too.
        let timeout = match self.fixed_timeout {
            Some(t) => t,
            None => {
                Config::from_sources(&src)
                    .map_err(|e| e.to_string())?
                    .timeout
            }
        };
        let mut pinned = src.pinned();
        let access = self.access(&src).map_err(|e| e.to_string())?;
        let o = &access.oauth;
        if access.resource_server.is_none()
            && (o.scopes.is_some() || !o.clients.is_empty() || o.default.is_some())
        {
            pinned.push(
                "the tokens file has [oauth] rules, but OAuth is off (no --oauth-issuer): they apply to no one"
                    .to_owned(),
            );
        }
        let rate = src
            .parsed(&settings::RATE_LIMIT, RequestRate::parse)
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| {
                let limits = crate::actors::dispatcher::DispatchLimits::default();
                RequestRate {
                    per_second: limits.rate,
                    burst: limits.burst,
                }
            });
        Ok(Loaded {
            settings: LiveSettings {
                access: Arc::new(access),
                server_name: src
                    .text(&settings::SERVER_NAME)
                    .unwrap_or_else(|| DEFAULT_SERVER_NAME.to_owned()),
                server_description: src.text(&settings::SERVER_DESCRIPTION),
                instructions: src.text(&settings::INSTRUCTIONS),
                timeout,
                rate,
                claim_quiet: src
                    .number(&settings::CLAIM_QUIET_SECONDS, 0..=30u64)
                    .map_err(|e| e.to_string())?
                    .map_or(DEFAULT_CLAIM_QUIET, Duration::from_secs),
                claim_lease: src
                    .number(&settings::CLAIM_LEASE_SECONDS, 5..=600u64)
                    .map_err(|e| e.to_string())?
                    .map_or(DEFAULT_CLAIM_LEASE, Duration::from_secs),
                answer_max_chars: src
                    .number(&settings::ANSWER_MAX_CHARS, 2_000..=1_000_000u64)
                    .map_err(|e| e.to_string())?
                    .map_or(DEFAULT_ANSWER_MAX_CHARS, |n| n as usize),
            },
            pinned,
        })
    }

    /// The access rules: the tokens (inline and in their file) and the bounds on every caller.
    fn access(&self, src: &settings::Sources) -> Result<AccessPolicy, Box<dyn std::error::Error>> {
        let tokens_file = src
            .pick(&settings::TOKENS_FILE)
            .map(|r| PathBuf::from(r.value()));
        let inline = src.pick(&settings::TOKENS).map(|r| r.value().to_owned());
        let mut access = AccessPolicy::build(
            inline.as_deref(),
            tokens_file.as_deref(),
            src.switch(&settings::READ_ONLY)?,
            src.list(&settings::TOOLS),
            &self.known_tools,
        )?;
        access.switchboard_integration = src.text(&settings::SWITCHBOARD_INTEGRATION);
        access.no_send_guard = src.switch(&settings::NO_SEND_GUARD)?;
        access.dry_run = src.switch(&settings::DRY_RUN)?;
        access.resource_server = self.resource_server.clone();
        Ok(access)
    }

    /// The settings file and the tokens file, when given.
    fn files(&self) -> [Option<PathBuf>; 2] {
        let src = settings::Sources::unread(self.given.clone(), self.env.clone());
        [
            src.config_file(),
            src.pick(&settings::TOKENS_FILE)
                .map(|r| PathBuf::from(r.value())),
        ]
    }

    /// What the files hold now (to see whether they changed).
    fn contents(&self) -> Vec<Option<Vec<u8>>> {
        self.files()
            .into_iter()
            .map(|p| p.and_then(|p| std::fs::read(p).ok()))
            .collect()
    }
}

/// The settings in force, how to read them again, and the sessions to tell of a change.
pub struct Live {
    current: ArcSwap<LiveSettings>,
    sources: Option<Sources>,
    sessions: Mutex<Vec<Peer<RoleServer>>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("current", &self.current.load())
            .field("reloadable", &self.sources.is_some())
            .finish()
    }
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    Applied,
    Unchanged,
}

impl Live {
    /// Settings that are never re-read.
    pub(crate) fn fixed(settings: LiveSettings) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::from_pointee(settings),
            sources: None,
            sessions: Mutex::new(vec![]),
        })
    }

    /// Settings read from `sources`, re-read by [`Live::reload`].
    pub fn from_sources(sources: Sources) -> Result<(Arc<Self>, Vec<String>), String> {
        let loaded = sources.load()?;
        Ok((
            Arc::new(Self {
                current: ArcSwap::from_pointee(loaded.settings),
                sources: Some(sources),
                sessions: Mutex::new(vec![]),
            }),
            loaded.pinned,
        ))
    }

    /// The settings in force now; a call keeps what it got here to its end.
    pub fn get(&self) -> Arc<LiveSettings> {
        self.current.load_full()
    }

    /// Remembers a session, to tell it when the tool list may have changed.
    pub(crate) fn register(&self, peer: Peer<RoleServer>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|p| !p.is_transport_closed());
        sessions.push(peer);
    }

    /// Reads the sources again and applies them to `actors` (the upstream budget and deadline)
    /// and to the calls that start from now on. `Err`: the sources are invalid; nothing changed.
    pub async fn reload(&self, actors: &Actors, why: &str) -> Result<Reloaded, String> {
        let Some(sources) = &self.sources else {
            return Ok(Reloaded::Unchanged);
        };
        let outcome = |o: &'static str| {
            (actors.metrics.config_reloads).add(1, &[crate::telemetry::kv("outcome", o)])
        };
        let before = self.get();
        let new = match self.checked(sources, &before) {
            Ok(new) => new,
            Err(e) => {
                outcome("invalid");
                tracing::error!(
                    reason = why,
                    "the settings were not reloaded, the old ones stay in force: {e}"
                );
                return Err(e);
            }
        };
        // Token secrets are not in the Debug form: compare them through the profiles they bind.
        let access_changed = format!("{:?}", before.access) != format!("{:?}", new.access)
            || before.access.fingerprint() != new.access.fingerprint();
        let changed = changes(&before, &new, access_changed);
        if changed.is_empty() {
            outcome("unchanged");
            tracing::info!(reason = why, "settings re-read: nothing changed");
            return Ok(Reloaded::Unchanged);
        }
        let new = apply_upstream(actors, &before, new).await;
        self.current.store(Arc::new(new));
        outcome("applied");
        tracing::info!(reason = why, changed = %changed.join(", "), "settings reloaded");
        if access_changed {
            self.tell_sessions().await;
            let access = self.get().access.clone();
            crate::operations::switchboard::warn_of_unknown_integrations(actors, &access).await;
        }
        Ok(Reloaded::Applied)
    }

    /// The sources read again, unless they are invalid or would empty the tokens in force.
    fn checked(&self, sources: &Sources, before: &LiveSettings) -> Result<LiveSettings, String> {
        let loaded = sources.load()?;
        for note in &loaded.pinned {
            tracing::info!("{note}");
        }
        // Emptying the tokens would open /mcp to anyone who can reach it: never by a reload.
        if before.access.requires_tokens() && !loaded.settings.access.requires_tokens() {
            return Err("the tokens file now holds no token, which would open /mcp to anyone who can reach it; the tokens in force stay (restart the server to run without tokens)".to_owned());
        }
        Ok(loaded.settings)
    }

    /// Tells every open session that its tool list may have changed.
    async fn tell_sessions(&self) {
        let sessions: Vec<_> = {
            let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            s.retain(|p| !p.is_transport_closed());
            s.clone()
        };
        for peer in sessions {
            if let Err(e) = peer.notify_tool_list_changed().await {
                tracing::debug!("cannot tell a session its tool list changed: {e}");
            }
        }
    }

    /// Re-reads on SIGHUP and whenever a file's content changes (looked at every `every`),
    /// until `stop` is cancelled.
    pub(crate) fn watch(
        self: &Arc<Self>,
        actors: Arc<Actors>,
        every: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let Some(sources) = self.sources.clone() else {
            return;
        };
        let live = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut seen = sources.contents();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<()>();
                let why = tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = hangup => {
                        seen = sources.contents();
                        "SIGHUP".to_owned()
                    }
                    _ = tick.tick() => {
                        let now = sources.contents();
                        if now == seen {
                            continue;
                        }
                        let files = sources.files();
                        let named: Vec<String> = now
                            .iter()
                            .zip(&seen)
                            .zip(&files)
                            .filter(|((a, b), _)| a != b)
                            .filter_map(|(_, f)| f.as_ref().map(|f| f.display().to_string()))
                            .collect();
                        seen = now;
                        format!("{} changed", named.join(" and "))
                    }
                };
                let _ = live.reload(&actors, &why).await;
            }
        });
    }
}

/// The names of the settings that differ between `before` and `new`.
fn changes(before: &LiveSettings, new: &LiveSettings, access_changed: bool) -> Vec<&'static str> {
    [
        ("access rules", access_changed),
        ("server_name", before.server_name != new.server_name),
        (
            "server_description",
            before.server_description != new.server_description,
        ),
        ("instructions", before.instructions != new.instructions),
        ("timeout_secs", before.timeout != new.timeout),
        ("rate_limit", before.rate != new.rate),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

/// Applies a changed upstream deadline and budget to `actors`; a budget the shared store could
/// not take stays as it was in the settings returned, so the next reload tries again.
async fn apply_upstream(
    actors: &Actors,
    before: &LiveSettings,
    mut new: LiveSettings,
) -> LiveSettings {
    if before.timeout != new.timeout {
        actors.dispatcher.set_deadline(new.timeout);
        tracing::info!(
            timeout_secs = new.timeout.as_secs(),
            "the upstream timeout is now {} s for calls that start from now on",
            new.timeout.as_secs()
        );
    }
    if before.rate != new.rate {
        match actors
            .budget
            .reshape(new.rate.per_second, new.rate.burst)
            .await
        {
            Ok((rate, burst)) => tracing::info!(
                rate,
                burst,
                "the upstream budget in use is now {rate}/s with a burst of {burst} ({})",
                actors.stores.describe()
            ),
            Err(e) => {
                // Kept as before, so the next reload (SIGHUP will do) tries again.
                tracing::warn!(
                    "the new upstream budget could not be stored ({e}); the budget stays {}/s with a burst of {} until a reload stores it",
                    before.rate.per_second,
                    before.rate.burst
                );
                new.rate = before.rate;
            }
        }
    }
    new
}
