//! Every setting the server has, declared once; [`ALL`] lists them in the order `--help` does.

use super::Group::{Server, Upstream};
use super::Setting;

/// The API's base URL unless a setting names another.
pub const DEFAULT_API_URL: &str = "https://api.smooch.io";
/// The deadline of one call's upstream work, seconds ([`TIMEOUT_SECS`]'s default).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// The lifetime of minted JWTs, seconds ([`JWT_LIFETIME_SECS`]'s default).
pub const DEFAULT_JWT_LIFETIME_SECS: u64 = 3600;
/// The server name clients see unless the settings file names another.
pub const DEFAULT_SERVER_NAME: &str = "zendesk-messaging-mcp";

// How the server talks to Sunshine Conversations (`config` checks these).
pub const CONFIG: Setting = Setting::new(
    "config",
    Upstream,
    "TOML file with any of the settings below (keys in snake_case: app_id, key_id, ...)",
)
.flag("config", "FILE")
.env("ZENDESK_MCP_CONFIG");
pub(crate) const APP_ID: Setting =
    Setting::new("app_id", Upstream, "Sunshine Conversations app id")
        .flag("app-id", "APP_ID")
        .env("SUNCO_APP_ID")
        .file();
pub(crate) const KEY_ID: Setting = Setting::new(
    "key_id",
    Upstream,
    "API key id: app_..., act_..., svc_... or int_...",
)
.flag("key-id", "KEY_ID")
.env("SUNCO_KEY_ID")
.file();
pub(crate) const KEY_SECRET: Setting = Setting::new(
    "key_secret",
    Upstream,
    "API key secret; prefer --key-secret-file, flags show in process lists",
)
.flag("key-secret", "KEY_SECRET")
.env("SUNCO_KEY_SECRET")
.file();
pub(crate) const KEY_SECRET_FILE: Setting = Setting::new(
    "key_secret_file",
    Upstream,
    "File holding the key secret; re-read when it changes",
)
.flag("key-secret-file", "FILE")
.env("SUNCO_KEY_SECRET_FILE")
.file();
pub(crate) const AUTH: Setting = Setting::new(
    "auth",
    Upstream,
    "Authentication scheme upstream: jwt or basic",
)
.flag("auth", "AUTH")
.env("SUNCO_AUTH")
.file()
.default("jwt");
pub(crate) const API_URL: Setting = Setting::new("api_url", Upstream, "API base URL")
    .flag("api-url", "API_URL")
    .env("SUNCO_API_URL")
    .file()
    .default(DEFAULT_API_URL);
pub(crate) const WEBHOOK_SECRET: Setting = Setting::new(
    "webhook_secret",
    Upstream,
    "Shared secret SunCo sends in X-API-Key on webhooks",
)
.flag("webhook-secret", "WEBHOOK_SECRET")
.env("SUNCO_WEBHOOK_SECRET")
.file();
pub const TIMEOUT_SECS: Setting = Setting::new(
    "timeout_secs",
    Upstream,
    "Deadline for one call's upstream work, in seconds",
)
.flag("timeout-secs", "TIMEOUT_SECS")
.env("SUNCO_TIMEOUT_SECS")
.reloads()
.default("30");
pub(crate) const JWT_LIFETIME_SECS: Setting = Setting::new(
    "jwt_lifetime_secs",
    Upstream,
    "Lifetime of minted JWTs in seconds, 0 for none",
)
.flag("jwt-lifetime-secs", "JWT_LIFETIME_SECS")
.env("SUNCO_JWT_LIFETIME_SECS")
.file()
.default("3600");

// The server itself (`serve` and `stdio`).
pub const BIND: Setting = Setting::new(
    "bind",
    Server,
    "Address for the HTTP routes: IP:PORT or HOST:PORT, e.g. localhost:8090 (loopback by default; port 0 picks a free port)",
)
.flag("bind", "ADDRESS:PORT");
pub const METRICS_BIND: Setting = Setting::new(
    "metrics_bind",
    Server,
    "Serve /metrics on this address of its own (IP:PORT or HOST:PORT), and not beside /mcp: for a scraper that must not reach /mcp, or a port the Service does not expose",
)
.flag("metrics-bind", "ADDRESS:PORT")
.env("ZENDESK_MCP_METRICS_BIND");
pub const HTTP_MCP: Setting = Setting::new(
    "http_mcp",
    Server,
    "stdio only: also serve the tools over HTTP at /mcp beside stdio (off by default: only the webhook route and the probes are served over HTTP)",
)
.switch("http-mcp");
pub const SIMULATOR: Setting = Setting::new(
    "simulator",
    Server,
    "Start the embedded simulator with the demo world and use it as the upstream; no credentials needed (SUNCO_* settings are then ignored)",
)
.switch("simulator");
pub(crate) const RATE_LIMIT: Setting = Setting::new(
    "rate_limit",
    Server,
    "Upstream requests per second, optionally with a burst (e.g. 50:20)",
)
.flag("rate-limit", "RPS[:BURST]")
.reloads();
pub const MAX_IN_FLIGHT: Setting = Setting::new(
    "max_in_flight",
    Server,
    "Upstream requests in flight at most",
)
.flag("max-in-flight", "N");
pub const MCP_CONCURRENCY: Setting = Setting::new(
    "mcp_concurrency",
    Server,
    "/mcp POSTs handled at once; the others wait up to 5 s for a turn, then get 503 busy. Each costs memory while it runs: raise it with --max-in-flight when calls wait long upstream and calls that need no upstream must still get through",
)
.flag("mcp-concurrency", "N")
.default("64");
pub const QUEUE: Setting = Setting::new(
    "queue",
    Server,
    "Calls waiting for the upstream at most; past it calls fail at once with \"busy\"",
)
.flag("queue", "N");
pub const TOKENS_FILE: Setting = Setting::new(
    "tokens_file",
    Server,
    "A TOML file of bearer tokens and their profiles (inline tokens come from ZENDESK_MCP_TOKENS as NAME:TOKEN[:read-only], comma-separated)",
)
.flag("tokens-file", "FILE")
.env("ZENDESK_MCP_TOKENS_FILE");
pub(crate) const TOKENS: Setting = Setting::new(
    "tokens",
    Server,
    "Inline bearer tokens, NAME:TOKEN[:read-only], comma-separated",
)
.env("ZENDESK_MCP_TOKENS");
pub(crate) const READ_ONLY: Setting = Setting::new(
    "read_only",
    Server,
    "Only read-only tools, for every caller",
)
.switch("read-only")
.reloads();
pub(crate) const TOOLS: Setting = Setting::new(
    "tools",
    Server,
    "Only these tools, for every caller (comma-separated names)",
)
.flag("tools", "TOOL,...")
.list()
.reloads();
pub const SWITCHBOARD_INTEGRATION: Setting = Setting::new(
    "switchboard_integration",
    Server,
    "The switchboard integration every caller speaks for (id, name or type, e.g. bot), unless its token names another: business messages go only into conversations it controls",
)
.flag("switchboard-integration", "INTEGRATION")
.reloads();
pub(crate) const NO_SEND_GUARD: Setting = Setting::new(
    "no_send_guard",
    Server,
    "Turn the send guard off for callers that name no switchboard integration: their business messages go into any conversation, even one a human agent controls (by default they speak for the switchboard's default integration)",
)
.switch("no-send-guard")
.reloads();
pub(crate) const CLAIM_QUIET_SECONDS: Setting = Setting::new(
    "claim_quiet_seconds",
    Server,
    "How long a customer must have been quiet before claim_conversation hands the conversation out, when the call does not say (quietSeconds), 0-30",
)
.flag("claim-quiet-seconds", "SECONDS")
.reloads()
.default("2");
pub(crate) const CLAIM_LEASE_SECONDS: Setting = Setting::new(
    "claim_lease_seconds",
    Server,
    "How long a claim lasts unless renewed, when claim_conversation does not say (leaseSeconds), 5-600",
)
.flag("claim-lease-seconds", "SECONDS")
.reloads()
.default("60");
pub(crate) const ANSWER_MAX_CHARS: Setting = Setting::new(
    "answer_max_chars",
    Server,
    "The largest tool answer, in characters of its JSON (the text and the structured content each), 2000-1000000; a longer one is trimmed: a page loses its far items (hasMore and nextCursor continue after the last kept), long strings are cut with a marker naming the call that returns them whole, and `trimmed` says so. The default stays well under the 25,000 tokens clients accept",
)
.flag("answer-max-chars", "CHARS")
.reloads()
.default("30000");
pub const INDEX_CONVERSATIONS: Setting = Setting::new(
    "index_conversations",
    Server,
    "Conversations the index keeps (those the webhooks told of; the least recently active are forgotten first)",
)
.flag("index-conversations", "N")
.default("10000");
pub const INDEX_MAX_AGE_HOURS: Setting = Setting::new(
    "index_max_age_hours",
    Server,
    "Hours after which the index forgets a conversation without activity",
)
.flag("index-max-age-hours", "HOURS")
.default("24");
pub const OAUTH_ISSUER: Setting = Setting::new(
    "oauth_issuer",
    Server,
    "Make /mcp an OAuth 2.1 resource server for this authorization server (its issuer URL; https except on loopback): access tokens it issues for --public-url are accepted beside the static tokens",
)
.flag("oauth-issuer", "URL")
.env("ZENDESK_MCP_OAUTH_ISSUER");
pub const PUBLIC_URL: Setting = Setting::new(
    "public_url",
    Server,
    "The full URL of this server's /mcp as callers reach it: the resource tokens must be issued for (with --oauth-issuer)",
)
.flag("public-url", "URL")
.env("ZENDESK_MCP_PUBLIC_URL");
pub const OAUTH_AUDIENCE: Setting = Setting::new(
    "oauth_audience",
    Server,
    "The audiences (aud) an access token may name, comma-separated (default: --public-url); Entra ID names the API's application ID URI or client id",
)
.flag("oauth-audience", "AUD,...")
.env("ZENDESK_MCP_OAUTH_AUDIENCE")
.list();
pub(crate) const DRY_RUN: Setting = Setting::new(
    "dry_run",
    Server,
    "Dry run for every caller: writes are validated and answered with the request they would send (dryRun: true); nothing is sent. Reads are real",
)
.switch("dry-run")
.reloads();
pub const ALLOW_UNAUTHENTICATED: Setting = Setting::new(
    "allow_unauthenticated",
    Server,
    "Serve /mcp without bearer tokens on a non-loopback address (only behind a proxy that authenticates callers)",
)
.switch("allow-unauthenticated");
pub const ALLOWED_HOST: Setting = Setting::new(
    "allowed_host",
    Server,
    "A Host name /mcp accepts besides the loopback ones (repeatable)",
)
.flag("allowed-host", "HOST")
.repeated();
pub const ALLOWED_ORIGIN: Setting = Setting::new(
    "allowed_origin",
    Server,
    "A browser Origin /mcp accepts besides its own loopback origins (repeatable)",
)
.flag("allowed-origin", "ORIGIN")
.repeated();
pub const REDIS_URL: Setting = Setting::new(
    "redis_url",
    Server,
    "Share the state of several replicas in Redis or Valkey: redis://, rediss://, unix:// (any node of a Cluster too) or redis+sentinel://HOST[:PORT][,…]/SERVICE (without it everything stays in this process's memory)",
)
.flag("redis-url", "URL")
.env("ZENDESK_MCP_REDIS_URL");
pub const REPLICAS: Setting = Setting::new(
    "replicas",
    Server,
    "While Redis is down, split the upstream budget across N replicas (default: the live replicas last seen in Redis)",
)
.flag("replicas", "N");
pub const SHUTDOWN_GRACE: Setting = Setting::new(
    "shutdown_grace",
    Server,
    "On SIGTERM or Ctrl-C: how long the calls in flight may take to finish before the rest is ended (seconds)",
)
.flag("shutdown-grace", "SECONDS")
.default("30");
pub(crate) const SERVER_NAME: Setting = Setting::new(
    "server_name",
    Server,
    "The server's name as clients see it (serverInfo.name)",
)
.reloads()
.default(DEFAULT_SERVER_NAME);
pub(crate) const SERVER_DESCRIPTION: Setting = Setting::new(
    "server_description",
    Server,
    "The server's description as clients see it (serverInfo.description)",
)
.reloads();
pub(crate) const INSTRUCTIONS: Setting = Setting::new(
    "instructions",
    Server,
    "The operator's words to models, after the server's own instructions",
)
.reloads();

/// Every setting, in the order `--help` lists them.
pub(crate) const ALL: &[&Setting] = &[
    &CONFIG,
    &APP_ID,
    &KEY_ID,
    &KEY_SECRET,
    &KEY_SECRET_FILE,
    &AUTH,
    &API_URL,
    &WEBHOOK_SECRET,
    &TIMEOUT_SECS,
    &JWT_LIFETIME_SECS,
    &BIND,
    &METRICS_BIND,
    &HTTP_MCP,
    &SIMULATOR,
    &RATE_LIMIT,
    &MAX_IN_FLIGHT,
    &MCP_CONCURRENCY,
    &QUEUE,
    &TOKENS_FILE,
    &TOKENS,
    &READ_ONLY,
    &TOOLS,
    &SWITCHBOARD_INTEGRATION,
    &NO_SEND_GUARD,
    &CLAIM_QUIET_SECONDS,
    &CLAIM_LEASE_SECONDS,
    &ANSWER_MAX_CHARS,
    &INDEX_CONVERSATIONS,
    &INDEX_MAX_AGE_HOURS,
    &OAUTH_ISSUER,
    &PUBLIC_URL,
    &OAUTH_AUDIENCE,
    &DRY_RUN,
    &ALLOW_UNAUTHENTICATED,
    &ALLOWED_HOST,
    &ALLOWED_ORIGIN,
    &REDIS_URL,
    &REPLICAS,
    &SHUTDOWN_GRACE,
    &SERVER_NAME,
    &SERVER_DESCRIPTION,
    &INSTRUCTIONS,
];
