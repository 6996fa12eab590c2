//! The command line: parse, load configuration, run one subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use rmcp::ServiceExt;
use tokio::net::TcpListener;

use zendesk_messaging_mcp::actors::SupervisorSettings;
use zendesk_messaging_mcp::config::{Config, ConfigFlags};
use zendesk_messaging_mcp::mcp::ZendeskMcp;
use zendesk_messaging_mcp::server::{self, HttpOptions, RunningServer};
use zendesk_messaging_mcp::simulator::{self, SimConfig, SimulatorArgs};
use zendesk_messaging_mcp::telemetry::{LogFormat, Telemetry, init_logging};

/// An MCP server for Zendesk Messaging (Sunshine Conversations API v2), with a spec-faithful
/// simulator of that API.
#[derive(Debug, Parser)]
#[command(name = "zendesk-messaging-mcp", version, about)]
struct Cli {
    /// Log lines on stderr: json (with trace and span ids) or text
    #[arg(long, value_enum, global = true, default_value = "json")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the MCP tools over Streamable HTTP at /mcp (plus /webhooks/sunco, /healthz, /readyz)
    Serve(ServeArgs),
    /// Serve the MCP tools over stdio, for desktop clients (the HTTP routes run beside it)
    Stdio(ServeArgs),
    /// Run the Sunshine Conversations simulator
    Simulator(SimulatorArgs),
    /// Check the configuration and print it, secrets redacted
    Config(ConfigFlags),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address for the HTTP routes: IP:PORT or HOST:PORT, e.g. localhost:8090 (loopback by
    /// default; port 0 picks a free port)
    #[arg(long, value_name = "ADDRESS:PORT", value_parser = zendesk_messaging_mcp::config::parse_bind)]
    bind: Option<SocketAddr>,
    /// stdio only: also serve the tools over HTTP at /mcp beside stdio (off by default: only the
    /// webhook route and the probes are served over HTTP)
    #[arg(long)]
    http_mcp: bool,
    /// Start the embedded simulator with the demo world and use it as the upstream; no
    /// credentials needed (SUNCO_* settings are then ignored)
    #[arg(long)]
    simulator: bool,
    /// Upstream requests per second, optionally with a burst (e.g. 50:20)
    #[arg(long, value_name = "RPS[:BURST]", value_parser = zendesk_messaging_mcp::config::RequestRate::parse)]
    rate_limit: Option<zendesk_messaging_mcp::config::RequestRate>,
    /// Upstream requests in flight at most
    #[arg(long, value_name = "N")]
    max_in_flight: Option<usize>,
    /// `/mcp` POSTs handled at once (64); the others wait up to 5 s for a turn, then get 503
    /// busy. Each costs memory while it runs: raise it with --max-in-flight when calls wait long
    /// upstream and calls that need no upstream must still get through
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    mcp_concurrency: Option<u32>,
    /// Calls waiting for the upstream at most; past it calls fail at once with "busy"
    #[arg(long, value_name = "N")]
    queue: Option<usize>,
    /// A TOML file of bearer tokens and their profiles (also ZENDESK_MCP_TOKENS_FILE; inline
    /// tokens come from ZENDESK_MCP_TOKENS as NAME:TOKEN[:read-only], comma-separated)
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<std::path::PathBuf>,
    /// Only read-only tools, for every caller
    #[arg(long)]
    read_only: bool,
    /// Only these tools, for every caller (comma-separated names)
    #[arg(long, value_delimiter = ',', value_name = "TOOL,...")]
    tools: Option<Vec<String>>,
    /// The switchboard integration every caller speaks for (id, name or type, e.g. bot), unless
    /// its token names another: business messages go only into conversations it controls
    #[arg(long, value_name = "INTEGRATION")]
    switchboard_integration: Option<String>,
    /// Conversations the index keeps (those the webhooks told of; the least recently active
    /// are forgotten first)
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    index_conversations: u32,
    /// Hours after which the index forgets a conversation without activity
    #[arg(long, value_name = "HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=24 * 30))]
    index_max_age_hours: u32,
    /// Make /mcp an OAuth 2.1 resource server for this authorization server (its issuer URL;
    /// https except on loopback): access tokens it issues for --public-url are accepted beside
    /// the static tokens [env: ZENDESK_MCP_OAUTH_ISSUER]
    #[arg(long, value_name = "URL")]
    oauth_issuer: Option<String>,
    /// The full URL of this server's /mcp as callers reach it: the resource tokens must be
    /// issued for (with --oauth-issuer) [env: ZENDESK_MCP_PUBLIC_URL]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Dry run for every caller: writes are validated and answered with the request they would
    /// send (dryRun: true); nothing is sent. Reads are real
    #[arg(long)]
    dry_run: bool,
    /// Serve /mcp without bearer tokens on a non-loopback address (only behind a proxy that
    /// authenticates callers)
    #[arg(long)]
    allow_unauthenticated: bool,
    /// A Host name /mcp accepts besides the loopback ones (repeatable)
    #[arg(long, value_name = "HOST")]
    allowed_host: Vec<String>,
    /// A browser Origin /mcp accepts besides its own loopback origins (repeatable)
    #[arg(long, value_name = "ORIGIN")]
    allowed_origin: Vec<String>,
    /// Share the state of several replicas in Redis or Valkey: redis://, rediss:// or unix://
    /// (also ZENDESK_MCP_REDIS_URL; without it everything stays in this process's memory)
    #[arg(long, value_name = "URL")]
    redis_url: Option<String>,
    /// While Redis is down, split the upstream budget across N replicas (default: the live
    /// replicas last seen in Redis)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    replicas: Option<u32>,
    /// On SIGTERM or Ctrl-C: how long the calls in flight may take to finish before the rest is
    /// ended (seconds)
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    shutdown_grace: u64,
    #[command(flatten)]
    config: ConfigFlags,
}

impl ServeArgs {
    /// The access rules and HTTP options, from the flags, the ZENDESK_MCP_TOKENS* variables and
    /// the settings file: read now and again on SIGHUP or a change of either file.
    fn http(&self) -> Result<HttpOptions, String> {
        let switchboard_integration = match self.switchboard_integration.as_deref() {
            Some(s) if s.trim().is_empty() => {
                return Err(
                    "--switchboard-integration is empty: name the integration (id, name or type)"
                        .to_owned(),
                );
            }
            other => other.map(|s| s.trim().to_owned()),
        };
        let env = |flag: &Option<String>, var: &str| {
            flag.clone()
                .or_else(|| std::env::var(var).ok())
                .filter(|v| !v.trim().is_empty())
        };
        let oauth = match (
            env(&self.oauth_issuer, "ZENDESK_MCP_OAUTH_ISSUER"),
            env(&self.public_url, "ZENDESK_MCP_PUBLIC_URL"),
        ) {
            (Some(issuer), Some(public)) => Some(zendesk_messaging_mcp::oauth::OAuthSettings::new(
                &issuer, &public,
            )?),
            (None, None) => None,
            (Some(_), None) => {
                return Err("--oauth-issuer needs --public-url (ZENDESK_MCP_PUBLIC_URL): the full URL of this server's /mcp as callers reach it, which tokens must be issued for".to_owned());
            }
            (None, Some(_)) => {
                return Err(
                    "--public-url is for OAuth: give --oauth-issuer (ZENDESK_MCP_OAUTH_ISSUER) too"
                        .to_owned(),
                );
            }
        };
        let mut allowed_hosts = self.allowed_host.clone();
        if let Some(host) = oauth
            .as_ref()
            .and_then(|o| o.public_url.host_str().map(str::to_owned))
        {
            allowed_hosts.push(host);
        }
        let resource_server =
            oauth.map(|o| Arc::new(zendesk_messaging_mcp::oauth::ResourceServer::new(o)));
        let defaults = zendesk_messaging_mcp::actors::dispatcher::DispatchLimits::default();
        let sources = zendesk_messaging_mcp::live::Sources {
            config_flags: self.config.clone(),
            env: std::env::vars().collect(),
            tokens_file: self
                .tokens_file
                .clone()
                .or_else(|| std::env::var_os("ZENDESK_MCP_TOKENS_FILE").map(Into::into)),
            inline_tokens: std::env::var("ZENDESK_MCP_TOKENS").ok(),
            read_only: self.read_only,
            tools: self.tools.clone(),
            switchboard_integration,
            dry_run: self.dry_run,
            rate_limit: self.rate_limit,
            default_rate: zendesk_messaging_mcp::config::RequestRate {
                per_second: defaults.rate,
                burst: defaults.burst,
            },
            fixed_timeout: self.simulator.then(|| {
                std::time::Duration::from_secs(
                    self.config
                        .timeout_secs
                        .as_deref()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(zendesk_messaging_mcp::config::DEFAULT_TIMEOUT_SECS),
                )
            }),
            known_tools: ZendeskMcp::tool_names(),
            resource_server,
        };
        let (live, pinned) = zendesk_messaging_mcp::live::Live::from_sources(sources)?;
        for note in pinned {
            tracing::info!("{note}");
        }
        Ok(HttpOptions {
            access: live.get().access.clone(),
            live: Some(live),
            allowed_hosts,
            allowed_origins: self.allowed_origin.clone(),
            mcp_concurrency: self
                .mcp_concurrency
                .map_or(zendesk_messaging_mcp::server::MCP_CONCURRENCY, |n| {
                    n as usize
                }),
            ..Default::default()
        })
    }

    /// The actors' settings; `rate` is the upstream budget the flags and the settings file say.
    fn settings(
        &self,
        telemetry: Arc<Telemetry>,
        rate: zendesk_messaging_mcp::config::RequestRate,
    ) -> SupervisorSettings {
        let mut s = SupervisorSettings {
            telemetry,
            ..Default::default()
        };
        s.limits.rate = rate.per_second;
        s.limits.burst = rate.burst;
        if let Some(n) = self.max_in_flight {
            s.limits.max_in_flight = n.max(1);
        }
        if let Some(n) = self.queue {
            s.limits.queue_capacity = n;
        }
        s.tracker.conversations = self.index_conversations as usize;
        s.tracker.conversation_max_age =
            std::time::Duration::from_secs(u64::from(self.index_max_age_hours) * 3600);
        s
    }

    /// `--redis-url`, else `ZENDESK_MCP_REDIS_URL`, checked (its error never repeats the URL,
    /// which may carry a password: so not clap's value parser, whose errors do).
    fn redis(
        &self,
    ) -> Result<Option<zendesk_messaging_mcp::shared::redis_store::RedisOptions>, String> {
        use zendesk_messaging_mcp::shared::redis_store::{RedisOptions, check_url};
        let (url, name) = match &self.redis_url {
            Some(url) => (Some(url.clone()), "--redis-url"),
            None => (
                std::env::var("ZENDESK_MCP_REDIS_URL").ok(),
                "ZENDESK_MCP_REDIS_URL",
            ),
        };
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            if self.replicas.is_some() {
                tracing::warn!(
                    "--replicas applies only with --redis-url: without Redis this process keeps its own state and the whole budget"
                );
            }
            return Ok(None);
        };
        let url = check_url(&url).map_err(|e| format!("{name}: {e}"))?;
        let mut options = RedisOptions::new(url);
        options.replicas = self.replicas;
        Ok(Some(options))
    }
}

/// Starts the actors and the HTTP routes as the flags say; prints where to find them.
/// A running server and, with `--simulator`, the simulator it talks to.
struct Started {
    server: RunningServer,
    simulator: Option<simulator::RunningSimulator>,
    /// `--shutdown-grace`, seconds.
    grace: u64,
}

impl Started {
    async fn shutdown(self) {
        self.server
            .shutdown_within(std::time::Duration::from_secs(self.grace))
            .await;
        if let Some(sim) = self.simulator {
            sim.shutdown().await;
        }
    }
}

async fn start(
    args: ServeArgs,
    stdio: bool,
    telemetry: Arc<Telemetry>,
) -> Result<Started, ExitCode> {
    let default_port = if stdio { 0 } else { 8090 };
    let grace = args.shutdown_grace;
    let bind = args
        .bind
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], default_port)));
    let mut http = args.http().map_err(|e| {
        eprintln!("serve: {e}");
        ExitCode::from(2)
    })?;
    // Over stdio the client is the parent process; an HTTP /mcp beside it would be a second,
    // unannounced way in, so it is served only when asked for.
    http.serve_mcp = !stdio || args.http_mcp;
    if !stdio && args.http_mcp {
        eprintln!("serve: --http-mcp applies to stdio only (serve always serves /mcp)");
        return Err(ExitCode::from(2));
    }
    if http.serve_mcp
        && let Err(e) = http.access.check_bind(bind, args.allow_unauthenticated)
    {
        eprintln!("serve: {e}");
        return Err(ExitCode::from(2));
    }
    let listener = TcpListener::bind(bind).await.map_err(|e| {
        eprintln!("serve: cannot listen on {bind}: {e}");
        ExitCode::from(1)
    })?;
    let rate = http
        .live
        .as_ref()
        .map(|l| l.get().rate)
        .expect("the settings are read from their sources");
    let mut settings = args.settings(telemetry, rate);
    settings.redis = args.redis().map_err(|e| {
        eprintln!("serve: {e}");
        ExitCode::from(2)
    })?;
    let (running, simulator, upstream) = if args.simulator {
        let timeout = args
            .config
            .timeout_secs
            .as_deref()
            .and_then(|t| t.parse().ok())
            .map(std::time::Duration::from_secs);
        let w = server::serve_with_simulator(listener, settings, timeout, http.clone())
            .await
            .map_err(|e| {
                eprintln!("serve: {e}");
                ExitCode::from(1)
            })?;
        let upstream = format!(
            "the embedded simulator at {} (demo world, app {})",
            w.simulator.base_url(),
            w.config.app_id
        );
        (w.server, Some(w.simulator), upstream)
    } else {
        let config = Config::load(args.config).map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(2)
        })?;
        let upstream = format!("{} (app {})", config.api_url, config.app_id);
        let running = server::serve_with(listener, &config, settings, http.clone())
            .await
            .map_err(|e| {
                eprintln!("serve: {e}");
                ExitCode::from(1)
            })?;
        (running, None, upstream)
    };
    let endpoint = if http.serve_mcp {
        running.mcp_url()
    } else {
        "stdio (HTTP /mcp is off; --http-mcp serves it too)".to_owned()
    };
    // What every caller's writes do: an operator must see a dry run and the send guard at once.
    let writes = match (http.access.dry_run, &http.access.switchboard_integration) {
        (true, _) => "dry run: validated and answered, never sent (--dry-run)".to_owned(),
        (false, Some(s)) => format!("sent; business messages only where {s:?} is in control"),
        (false, None) => "sent (tokens may name a switchboard integration or a dry run)".to_owned(),
    };
    let oauth = match &http.access.resource_server {
        Some(rs) => format!(
            "\n  OAuth:         access tokens from {} for {}",
            rs.settings.issuer_given,
            rs.settings.resource()
        ),
        None => String::new(),
    };
    let banner = format!(
        "zendesk-messaging-mcp {}\n  MCP endpoint:  {}{}\n  webhooks:      {}\n  upstream:      {}\n  shared state:  {}\n  writes:        {}\n  client configuration (e.g. .mcp.json):\n{}",
        env!("CARGO_PKG_VERSION"),
        endpoint,
        oauth,
        running.webhook_url(),
        upstream,
        running.actors.stores.describe(),
        writes,
        client_snippet(&running, stdio, args.simulator),
    );
    // In stdio mode stdout carries the protocol, so everything else goes to stderr. A closed
    // stdout (`serve | head -1`) is no reason to stop serving.
    use std::io::Write as _;
    let _ = if stdio {
        writeln!(std::io::stderr(), "{banner}")
    } else {
        writeln!(std::io::stdout(), "{banner}")
    };
    Ok(Started {
        server: running,
        simulator,
        grace,
    })
}

fn client_snippet(running: &RunningServer, stdio: bool, simulator: bool) -> String {
    let server = if stdio {
        let mut args = vec!["stdio".to_owned()];
        if simulator {
            args.push("--simulator".to_owned());
        }
        serde_json::json!({"command": "zendesk-messaging-mcp", "args": args})
    } else if let Some(rs) = &running.live.get().access.resource_server {
        // OAuth clients find how to get a token from the server itself (RFC 9728).
        serde_json::json!({"type": "http", "url": rs.settings.resource()})
    } else if running.live.get().access.requires_tokens() {
        // The token itself is the caller's to fill in; it is never printed.
        serde_json::json!({"type": "http", "url": running.mcp_url(),
            "headers": {"Authorization": "Bearer <your token>"}})
    } else {
        serde_json::json!({"type": "http", "url": running.mcp_url()})
    };
    let config = serde_json::json!({"mcpServers": {"zendesk-messaging": server}});
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// Resolves on SIGTERM (how every container platform stops a process) or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping"),
                }
                return;
            }
            Err(e) => tracing::warn!("cannot listen for SIGTERM ({e}); Ctrl-C still stops"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn run_serve(args: ServeArgs, telemetry: Arc<Telemetry>) -> ExitCode {
    let running = match start(args, false, telemetry).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    let code = tokio::select! {
        _ = stop_signal() => ExitCode::SUCCESS,
        _ = running.server.stopped() => {
            eprintln!("serve: the actors stopped (see the log above); exiting");
            ExitCode::from(1)
        }
    };
    running.shutdown().await;
    code
}

async fn run_stdio(args: ServeArgs, telemetry: Arc<Telemetry>) -> ExitCode {
    let running = match start(args, true, telemetry).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    let service = match ZendeskMcp::new(
        running.server.operations.clone(),
        running.server.live.clone(),
    )
    .serve(rmcp::transport::stdio())
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stdio: the MCP session did not start: {e}");
            return ExitCode::from(1);
        }
    };
    let code = tokio::select! {
        _ = service.waiting() => ExitCode::SUCCESS,
        _ = running.server.stopped() => {
            eprintln!("stdio: the actors stopped (see the log above); exiting");
            ExitCode::from(1)
        }
    };
    running.shutdown().await;
    code
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match Telemetry::from_env() {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let logs = match init_logging(cli.log_format, telemetry.tracer()) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let code = run(cli.command, telemetry.clone()).await;
    telemetry.shutdown().await;
    drop(logs);
    code
}

async fn run(command: Command, telemetry: Arc<Telemetry>) -> ExitCode {
    match command {
        Command::Serve(args) => run_serve(args, telemetry).await,
        Command::Stdio(args) => run_stdio(args, telemetry).await,
        Command::Config(flags) => match Config::load(flags) {
            Ok(config) => {
                println!("{config}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Simulator(args) => {
            let config = match SimConfig::try_from(args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("simulator: {e}");
                    return ExitCode::from(2);
                }
            };
            let running = match simulator::start(config.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("simulator: cannot listen on {}: {e}", config.bind);
                    return ExitCode::from(1);
                }
            };
            println!("{}", simulator::banner(&running, &config));
            if tokio::signal::ctrl_c().await.is_err() {
                eprintln!("simulator: cannot wait for Ctrl-C; stopping");
            }
            running.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}
