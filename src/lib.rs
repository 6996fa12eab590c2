#![forbid(unsafe_code)]
//! # zendesk-messaging-mcp
//!
//! An MCP server that lets AI agents work Zendesk Messaging (the Sunshine Conversations API v2),
//! and a spec-faithful simulator of that API to run it, test it and benchmark it against.
//!
//! # Layout
//!
//! ```text
//! main.rs        thin: parse the command line, load configuration, run a subcommand
//!
//! Shared by every layer:
//! access.rs      bearer tokens and the profiles they grant: tool sets, read-only, rate limits
//! config.rs      typed settings: flags > environment > TOML file > defaults; secrets redacted
//! oauth.rs       /mcp as an OAuth 2.1 resource server: metadata, JWT access tokens, scopes
//! live.rs        the settings re-read while the server runs (SIGHUP, a file changed): access,
//!                the upstream budget and timeout, what the server tells clients
//! secret.rs      the string type that is never printed
//! error.rs       what can go wrong with a call, in terms an agent can act on; error classes
//! shared.rs      state replicas will share, behind small async traits with in-memory
//!                defaults and contracts every implementation must pass: inbound limits, the
//!                conversation index, switchboard invalidation, idempotency records, the
//!                delivery record, the upstream rate budget (one file each in shared/, and
//!                shared/contract.rs)
//! telemetry.rs   metric names, /metrics, OTLP from OTEL_*, traceparent in and out, JSON logs;
//!   telemetry/export.rs  OTLP timing variables, exporters that count and log their failures
//!
//! The layers, lowest first; none imports from a layer above it:
//! sunco/         the REST surface as data: no connections, no actors, no retries
//!   wire.rs        serde types named after the spec's schemas, one file per family in wire/
//!                  (errors, conversations, messages, users, switchboards, integrations,
//!                  responses, webhooks)
//!   events.rs      reading webhook events: every payload the spec allows, named defaults
//!   endpoints.rs   one request per endpoint we call, percent-encoded paths, retry class
//!   paging.rs      cursor pagination and deepObject filters
//!   auth.rs        HS256 JWT minting and Basic auth, pure functions
//!   ids.rs, path.rs  24-hex ids, millisecond timestamps, path-segment encoding
//! actors.rs      handles that survive restarts (a slot the supervisor refills)
//! actors/
//!   supervisor.rs  starts the four actors, restarts them, stops on a restart storm
//!   auth.rs        the key: JWT minting, timed refresh, re-mint after 401, key-file rotation
//!   dispatcher.rs  the only way upstream: token bucket, in-flight cap, bounded queue,
//!                  Retry-After and backoff, deadlines; owns the HTTP client
//!   dispatcher/policy.rs  the retry decision, a pure function
//!   switchboard.rs the routing picture in a moka cache
//!   delivery.rs    delivery events and failures from the webhooks, deduped and bounded;
//!                  what the server can see (tracking)
//! operations.rs  work that takes several calls, one module per family:
//! operations/
//!   conversations.rs  a user's conversations, and the index's; the filters on both
//!   messages.rs       finding one message: seen, else a bounded scan
//!   sends.rs          sending at most once per idempotencyKey, even after ambiguous failures
//!   switchboard.rs    who controls a conversation; control steps checked before the call; the
//!                     send guard
//!   delivery.rs       delivery status and failures, filtered
//!   remediation.rs    what to do about a delivery failure: the one table
//!   credentials.rs    whether the upstream accepts the key
//!   webhooks.rs       whether the upstream webhook sends every trigger the server reads
//! mcp.rs         the MCP server: tool table, calls (span, metrics, audit), logging, instructions
//! mcp/           the tools by family (conversations, messages, users, switchboard, integrations,
//!                delivery): arguments -> one call -> result; argument and result types (the
//!                schemas an LLM reads), content checks, cursors;
//!   args.rs        one argument decoder for every tool (numbers as strings, JSON text, null)
//!   context.rs     prompts (handoff_to_agent, triage_failures) and resources (routing, channels)
//!   schema.rs      schemas every client reads: refs inlined, standard formats, no booleans
//! server.rs      the HTTP face: the router, serving, the token check, request spans
//! server/
//!   webhook.rs     POST /webhooks/sunco
//!   health.rs      /healthz, /readyz and the credential check behind it
//!   negotiate.rs   Accept as clients send it, JSON-RPC errors for broken bodies, Host/Origin
//!   simulator.rs   the --simulator wiring
//!
//! Apart, using sunco only:
//! simulator/     the Sunshine Conversations simulator: an HTTP server with in-memory state
//!   state.rs       apps, keys, users, conversations, messages, switchboards, integrations
//!   routes.rs      the REST endpoints, status codes and error bodies of the spec, one file
//!                  per resource in routes/ (conversations, messages, control, users,
//!                  switchboards, integrations, webhooks)
//!   validate.rs    request validation with the spec's rules, errors naming the field
//!   auth.rs        Basic and JWT, app/account/integration scopes
//!   webhooks.rs    event delivery with X-API-Key, batching and SunCo-like retries
//!   delivery.rs    per-channel delivery rules that decide channel/user/failure events
//!   faults.rs      rate limit, 5xx, latency, dropped connections, accept-then-fail
//!   admin.rs       inspection routes under /_sim (counts, state, reset, faults)
//!   seed.rs        the `demo` and `empty` worlds
//! ```
//!
//! Where the upstream is concerned, `../shared/spec/openapi.yaml` (the official spec) is the
//! truth: the tests validate every simulator response against it.

pub mod access;
pub mod actors;
pub mod call;
pub mod config;
pub mod error;
pub mod live;
pub mod mcp;
pub mod oauth;
pub mod operations;
pub mod secret;
pub mod server;
pub mod settings;
pub mod shared;
pub mod simulator;
pub mod sunco;
pub mod telemetry;
