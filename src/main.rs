//! The command line: parse, load configuration, run one subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use rmcp::ServiceExt;
use tokio::net::TcpListener;

use zendesk_messaging_mcp::actors::SupervisorSettings;
use zendesk_messaging_mcp::config::Config;
use zendesk_messaging_mcp::mcp::ZendeskMcp;
use zendesk_messaging_mcp::oauth::{OAuthSettings, ResourceServer};
use zendesk_messaging_mcp::server::{self, HttpOptions, RunningServer};
use zendesk_messaging_mcp::settings::{self, ServerFlags, UpstreamFlags};
use zendesk_messaging_mcp::shared::redis_store::{RedisOptions, check_url};
use zendesk_messaging_mcp::simulator::{self, SimConfig, SimulatorArgs};
use zendesk_messaging_mcp::telemetry::{LogFormat, Telemetry, init_logging};

/// An MCP server for Zendesk Messaging (Sunshine Conversations API v2), with a spec-faithful
/// simulator of that API.
#[derive(Debug, Parser)]
#[command(name = "zendesk-messaging-mcp", version, about)]
struct Cli {
    /// Log lines on stderr: json (with trace and span ids) or text [default: text on a
    /// terminal, json otherwise]
    #[arg(long, value_enum, global = true)]
    log_format: Option<LogFormat>,
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
    Simulator(Box<SimulatorArgs>),
    /// Check the configuration and print it, secrets redacted
    Config(UpstreamFlags),
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    flags: ServerFlags,
}

/// What `serve` and `stdio` are told: every setting, read through [`settings::Sources`].
struct Serve {
    src: settings::Sources,
}

/// A setting that cannot work: said on stderr, exit code 2.
fn refused(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("serve: {e}");
    ExitCode::from(2)
}

impl Serve {
    fn new(args: ServeArgs) -> Result<Self, String> {
        let src = settings::Sources::from_process(args.flags.0).map_err(|e| e.to_string())?;
        Ok(Self { src })
    }

    fn switch(&self, setting: &settings::Setting) -> Result<bool, String> {
        self.src.switch(setting).map_err(|e| e.to_string())
    }

    fn number<T>(
        &self,
        setting: &settings::Setting,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, String>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        self.src.number(setting, range).map_err(|e| e.to_string())
    }

    /// A server flag given blank (`--tokens-file ""`, `--switchboard-integration " "`) would
    /// silently mean "none" or fall back to another source: refused, naming the flag.
    fn no_blank_flags(&self) -> Result<(), String> {
        match self.src.blank_flags(settings::Group::Server).first() {
            Some(s) => Err(format!(
                "--{} is empty: give it a value ({}) or leave it out",
                s.flag.unwrap_or(s.key),
                s.value_name
            )),
            None => Ok(()),
        }
    }

    /// `--timeout-secs` alone (with the embedded simulator, the SUNCO_* settings and the
    /// settings file's upstream keys are ignored), else its default.
    fn simulator_timeout(&self) -> Result<u64, String> {
        let (given, _) = self.src.parts();
        let only_flag = given
            .get(&settings::TIMEOUT_SECS)
            .into_iter()
            .flatten()
            .fold(settings::Given::default(), |g, v| {
                g.with(&settings::TIMEOUT_SECS, v.as_str())
            });
        let src = settings::Sources::unread(only_flag, Default::default());
        let secs = src.number(&settings::TIMEOUT_SECS, 1..=600);
        Ok(secs
            .map_err(|e| e.to_string())?
            .expect("timeout_secs is declared with a default"))
    }

    /// `--oauth-issuer` with `--public-url` (or their variables), checked as a pair.
    fn oauth(&self) -> Result<Option<OAuthSettings>, String> {
        let text = |s: &settings::Setting| self.src.pick(s).map(|r| r.value().to_owned());
        match (text(&settings::OAUTH_ISSUER), text(&settings::PUBLIC_URL)) {
            (Some(issuer), Some(public)) => {
                let audiences = self.src.list(&settings::OAUTH_AUDIENCE).unwrap_or_default();
                Ok(Some(
                    OAuthSettings::new(&issuer, &public)?.with_audiences(audiences)?,
                ))
            }
            (None, None) if self.src.pick(&settings::OAUTH_AUDIENCE).is_some() => Err(
                "--oauth-audience is for OAuth: give --oauth-issuer and --public-url too".to_owned(),
            ),
            (None, None) => Ok(None),
            (Some(_), None) => Err("--oauth-issuer needs --public-url (ZENDESK_MCP_PUBLIC_URL): the full URL of this server's /mcp as callers reach it, which tokens must be issued for".to_owned()),
            (None, Some(_)) => Err(
                "--public-url is for OAuth: give --oauth-issuer (ZENDESK_MCP_OAUTH_ISSUER) too"
                    .to_owned(),
            ),
        }
    }

    /// The access rules and HTTP options, from the flags, the environment and the files they
    /// name: read now and again on SIGHUP or a change of either file.
    fn http(&self) -> Result<HttpOptions, String> {
        self.no_blank_flags()?;
        let oauth = self.oauth()?;
        let mut allowed_hosts = self.src.list(&settings::ALLOWED_HOST).unwrap_or_default();
        if let Some(host) = oauth
            .as_ref()
            .and_then(|o| o.public_url.host_str().map(str::to_owned))
        {
            allowed_hosts.push(host);
        }
        let (given, env) = self.src.parts();
        let simulator = self.switch(&settings::SIMULATOR)?;
        let fixed_timeout = match simulator {
            true => Some(std::time::Duration::from_secs(self.simulator_timeout()?)),
            false => None,
        };
        let sources = zendesk_messaging_mcp::live::Sources {
            given: given.clone(),
            env: env.clone(),
            fixed_timeout,
            known_tools: ZendeskMcp::tool_names(),
            resource_server: oauth.map(|o| Arc::new(ResourceServer::new(o))),
        };
        let (live, pinned) = zendesk_messaging_mcp::live::Live::from_sources(sources)?;
        for note in pinned {
            tracing::info!("{note}");
        }
        let concurrency = self.number(&settings::MCP_CONCURRENCY, 1..=65_536)?;
        Ok(HttpOptions {
            access: live.get().access.clone(),
            live: Some(live),
            allowed_hosts,
            allowed_origins: self.src.list(&settings::ALLOWED_ORIGIN).unwrap_or_default(),
            mcp_concurrency: concurrency.expect("mcp_concurrency is declared with a default"),
            metrics_bind: self
                .src
                .parsed(
                    &settings::METRICS_BIND,
                    zendesk_messaging_mcp::config::parse_bind,
                )
                .map_err(|e| e.to_string())?,
            ..Default::default()
        })
    }

    /// The actors' settings; `rate` is the upstream budget the flags and the settings file say.
    fn settings(
        &self,
        telemetry: Arc<Telemetry>,
        rate: zendesk_messaging_mcp::config::RequestRate,
    ) -> Result<SupervisorSettings, String> {
        let mut s = SupervisorSettings {
            telemetry,
            ..Default::default()
        };
        s.limits.rate = rate.per_second;
        s.limits.burst = rate.burst;
        if let Some(n) = self.number(&settings::MAX_IN_FLIGHT, 0..=usize::MAX)? {
            s.limits.max_in_flight = n.max(1);
        }
        if let Some(n) = self.number(&settings::QUEUE, 0..=usize::MAX)? {
            s.limits.queue_capacity = n;
        }
        if let Some(n) = self.number(&settings::INDEX_CONVERSATIONS, 1..=1_000_000usize)? {
            s.tracker.conversations = n;
        }
        if let Some(hours) = self.number(&settings::INDEX_MAX_AGE_HOURS, 1..=24 * 30u64)? {
            s.tracker.conversation_max_age = std::time::Duration::from_secs(hours * 3600);
        }
        s.redis = self.redis()?;
        Ok(s)
    }

    /// `--redis-url`, else `ZENDESK_MCP_REDIS_URL`, checked (its error never repeats the URL,
    /// which may carry a password).
    fn redis(&self) -> Result<Option<RedisOptions>, String> {
        let replicas = self.number(&settings::REPLICAS, 1..=u32::MAX)?;
        let Some(raw) = self.src.pick(&settings::REDIS_URL) else {
            if replicas.is_some() {
                tracing::warn!(
                    "--replicas applies only with --redis-url: without Redis this process keeps its own state and the whole budget"
                );
            }
            return Ok(None);
        };
        let name = match raw.note.contains("--redis-url") {
            true => "--redis-url",
            false => "ZENDESK_MCP_REDIS_URL",
        };
        let url = check_url(raw.value()).map_err(|e| format!("{name}: {e}"))?;
        let mut options = RedisOptions::new(url);
        options.replicas = replicas;
        Ok(Some(options))
    }
}

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

/// Where `serve` listens: `--bind`, else loopback (port 8090; any free port for stdio).
fn bind_address(serve: &Serve, stdio: bool) -> Result<SocketAddr, String> {
    let default_port = if stdio { 0 } else { 8090 };
    Ok(serve
        .src
        .parsed(&settings::BIND, zendesk_messaging_mcp::config::parse_bind)
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], default_port))))
}

/// What `start` checks before it listens: the HTTP options, where to listen, the grace.
fn prepare(serve: &Serve, stdio: bool) -> Result<(HttpOptions, SocketAddr, u64), String> {
    let bind = bind_address(serve, stdio)?;
    let grace = serve
        .number(&settings::SHUTDOWN_GRACE, 0..=u64::MAX)?
        .expect("shutdown_grace is declared with a default");
    let mut http = serve.http()?;
    let http_mcp = serve.switch(&settings::HTTP_MCP)?;
    // Over stdio the client is the parent process; an HTTP /mcp beside it would be a second,
    // unannounced way in, so it is served only when asked for.
    http.serve_mcp = !stdio || http_mcp;
    if !stdio && http_mcp {
        return Err("--http-mcp applies to stdio only (serve always serves /mcp)".to_owned());
    }
    if http.serve_mcp {
        let open = serve.switch(&settings::ALLOW_UNAUTHENTICATED)?;
        http.access
            .check_bind(bind, open)
            .map_err(|e| e.to_string())?;
    }
    Ok((http, bind, grace))
}

/// Starts the actors and the HTTP routes as the flags say; prints where to find them.
async fn start(
    args: ServeArgs,
    stdio: bool,
    telemetry: Arc<Telemetry>,
) -> Result<Started, ExitCode> {
    let serve = Serve::new(args).map_err(refused)?;
    let (http, bind, grace) = prepare(&serve, stdio).map_err(refused)?;
    let listener = TcpListener::bind(bind).await.map_err(|e| {
        eprintln!("serve: cannot listen on {bind}: {e}");
        ExitCode::from(1)
    })?;
    let rate = http
        .live
        .as_ref()
        .map(|l| l.get().rate)
        .expect("the settings are read from their sources");
    let settings = serve.settings(telemetry, rate).map_err(refused)?;
    let simulator = serve.switch(&settings::SIMULATOR).map_err(refused)?;
    let failed = |e: zendesk_messaging_mcp::error::CallError| {
        eprintln!("serve: {e}");
        ExitCode::from(1)
    };
    let (running, simulator, upstream) = if simulator {
        let timeout = serve.simulator_timeout().map_err(refused)?;
        let timeout = Some(std::time::Duration::from_secs(timeout));
        let w = server::serve_with_simulator(listener, settings, timeout, http.clone())
            .await
            .map_err(failed)?;
        let upstream = format!(
            "the embedded simulator at {} (demo world, app {})",
            w.simulator.base_url(),
            w.config.app_id
        );
        (w.server, Some(w.simulator), upstream)
    } else {
        let config = Config::from_sources(&serve.src).map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(2)
        })?;
        let upstream = format!("{} (app {})", config.api_url, config.app_id);
        let running = server::serve_with(listener, &config, settings, http.clone())
            .await
            .map_err(failed)?;
        (running, None, upstream)
    };
    let banner = banner(&running, &http, &upstream, stdio, simulator.is_some());
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

/// What the server prints when it starts: where it serves, what it talks to, what writes do,
/// and a client configuration to copy.
fn banner(
    running: &RunningServer,
    http: &HttpOptions,
    upstream: &str,
    stdio: bool,
    simulator: bool,
) -> String {
    let endpoint = if http.serve_mcp {
        running.mcp_url()
    } else {
        "stdio (HTTP /mcp is off; --http-mcp serves it too)".to_owned()
    };
    // What every caller's writes do: an operator must see a dry run and the send guard at once.
    let access = &http.access;
    let writes = match (access.dry_run, &access.switchboard_integration, access.no_send_guard) {
        (true, _, _) => "dry run: validated and answered, never sent (--dry-run)".to_owned(),
        (false, Some(s), _) => format!("sent; business messages only where {s:?} is in control"),
        (false, None, false) => "sent; business messages only where the switchboard's default integration is in control (tokens may name another; --no-send-guard turns this off)".to_owned(),
        (false, None, true) => "sent; the send guard is OFF (--no-send-guard): business messages go into any conversation, even one a human agent controls".to_owned(),
    };
    let oauth = match &http.access.resource_server {
        Some(rs) => format!(
            "\n  OAuth:         access tokens from {} for {}",
            rs.settings.issuer_given,
            rs.settings.resource()
        ),
        None => String::new(),
    };
    format!(
        "zendesk-messaging-mcp {}\n  MCP endpoint:  {}{}\n  webhooks:      {}{}\n  upstream:      {}\n  shared state:  {}\n  writes:        {}\n  client configuration (e.g. .mcp.json):\n{}",
        env!("CARGO_PKG_VERSION"),
        endpoint,
        oauth,
        running.webhook_url(),
        running
            .metrics_addr
            .map(|a| format!("\n  metrics:       http://{a}/metrics"))
            .unwrap_or_default(),
        upstream,
        running.actors.stores.describe(),
        writes,
        client_snippet(running, stdio, simulator),
    )
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
    let format = cli.log_format.unwrap_or_else(|| {
        use std::io::IsTerminal;
        match std::io::stderr().is_terminal() {
            true => LogFormat::Text,
            false => LogFormat::Json,
        }
    });
    let logs = match init_logging(format, telemetry.tracer()) {
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
        Command::Config(flags) => match Config::load(flags.0) {
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
            let config = match SimConfig::try_from(*args) {
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
