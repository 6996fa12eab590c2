#![forbid(unsafe_code)]
//! # zendesk-messaging-mcp
//!
//! An MCP server that lets AI agents work Zendesk Messaging (the Sunshine Conversations API v2),
//! and a spec-faithful simulator of that API to run it, test it and benchmark it against.
//!
//! # Layout
//!
//! ```text
//! main.rs        thin: parse the command line (made from the settings' declarations), start
//!                the server, print where it serves
//!
//! Shared by the layers (each imports only from what stands before it here, and from sunco's
//! vocabulary):
//! settings.rs    every setting declared once (settings/declared.rs: file key, flag, variable,
//!                default, whether it reloads); the command line made from them (flags.rs);
//!                the one precedence: flag > environment > settings file > default
//! secret.rs      the string type that is never printed
//! telemetry.rs   /metrics, OTLP from OTEL_*, traceparent in and out, JSON logs; the instruments
//!                in telemetry/metrics.rs, OTLP timing and failures in telemetry/export.rs
//! oauth.rs       /mcp as an OAuth 2.1 resource server: metadata, JWT access tokens, scopes
//! error.rs       what can go wrong with a call, in terms an agent can act on; error classes
//! config.rs      the upstream's settings, typed and checked (read through settings.rs)
//! shared.rs      state replicas share, behind small async traits with in-memory defaults
//!                (one file each in shared/: inbound limits, the conversation index,
//!                switchboard invalidation, idempotency records, the delivery record, the
//!                upstream rate budget, the work queue and its claims: claims.rs, its rules
//!                in claims/decide.rs), Redis implementations in shared/redis_store/, and
//!                the contract every implementation passes (shared/contract.rs, tests only)
//! access.rs      bearer tokens and the profiles they grant: tool sets, read-only, rate limits,
//!                the send guard's integration, dry runs (the tokens file: access/tokens_file.rs)
//! call.rs        a tool call as a value: caller, rules, live or dry run, span, deadline,
//!                cancellation; handed down explicitly, never kept in a task-local
//!
//! The layers, lowest first; none imports from a layer above it:
//! sunco/         the REST surface as data: no connections, no actors, no retries
//!   wire.rs        serde types named after the spec's schemas, one file per family in wire/
//!   events.rs      reading webhook events: every payload the spec allows, named defaults
//!   endpoints.rs   one request per endpoint we call, percent-encoded paths, retry class
//!   remediation.rs what to do about a delivery failure: the one table
//!   paging.rs      cursor pagination and deepObject filters
//!   auth.rs        HS256 JWT minting and Basic auth, pure functions
//!   ids.rs, path.rs  24-hex ids, millisecond timestamps, path-segment encoding
//! actors.rs      handles that survive restarts (a slot the supervisor refills)
//! actors/
//!   supervisor.rs  starts the four actors, restarts them, stops on a restart storm
//!   auth.rs        the key: JWT minting, timed refresh, re-mint after 401, key-file rotation
//!   dispatcher.rs  the only way upstream: the actor (token bucket, in-flight cap, bounded
//!                  queue, Retry-After) and the handle, which reads dry run, cancellation and
//!                  deadline from the call
//!   dispatcher/    attempt.rs (one attempt: exchange, decision, answer or retry), lane.rs
//!                  (the express lane), transport.rs (the HTTP client), policy.rs (the retry
//!                  decision, a pure function)
//!   switchboard.rs the routing picture in a moka cache
//!   delivery.rs    delivery events and failures from the webhooks, deduped and bounded;
//!                  what the server can see (delivery/watch.rs)
//! live.rs        the settings re-read while the server runs (SIGHUP, a file changed), applied
//!                to the actors (the upstream budget and timeout) and to new calls
//! operations.rs  work that takes several calls, one module per family; tools reach only this
//! operations/
//!   conversations.rs  a user's conversations, and the index's; the filters on both
//!   messages.rs       finding one message: seen, else a bounded scan that stops when the
//!                     call is cancelled
//!   sends.rs          sending at most once per idempotencyKey, even after ambiguous failures;
//!                     the send guard before it
//!   switchboard.rs    who controls a conversation (the send guard's integration); control
//!                     steps checked before the call
//!   claims.rs         the work loop: claiming, the check before an answer (claim or
//!                     inReplyTo), releases; claims/waiting.rs (waits, the lookups a
//!                     replica's waiters share, the gauges), claims/activities.rs
//!   delivery.rs       delivery status and failures, filtered
//!   credentials.rs    whether the upstream accepts the key
//!   webhooks.rs       whether the upstream webhook sends every trigger the server reads
//! mcp.rs         the MCP server: tool table, logging, instructions, prompts and resources
//! mcp/
//!   entry.rs       where every tool call enters and leaves: permission, arguments, span, the
//!                  Call; metrics, audit, the error's class
//!   conversations.rs, messages.rs, users.rs, switchboard.rs, integrations.rs, delivery.rs,
//!   claims.rs
//!                  the tools by family (arguments -> one operation -> result), each with its
//!                  argument and result types (the schemas an LLM reads); types.rs: the
//!                  arguments families share
//!   args.rs        one argument decoder for every tool (numbers as strings, JSON text, null)
//!   content.rs     content and metadata checks; cursor.rs: opaque cursors
//!   context.rs     prompts (handoff_to_agent, triage_failures) and resources (routing, channels)
//!   schema.rs      schemas every client reads: refs inlined, standard formats, no booleans
//! server.rs      the HTTP face: the router, serving, request spans
//! server/
//!   door.rs        the /mcp front door, its layers in order in door/: turns.rs, tokens.rs,
//!                  scopes.rs, sessions.rs, hosts.rs, negotiate.rs, stateless.rs
//!   webhook.rs     POST /webhooks/sunco
//!   health.rs      /healthz, /readyz and the credential check behind it
//!   simulator.rs   the --simulator wiring
//!
//! Apart, using sunco only:
//! simulator/     the Sunshine Conversations simulator: an HTTP server with in-memory state
//!   state.rs       apps, keys, users, conversations, messages, switchboards, integrations
//!   routes.rs      the REST endpoints, status codes and error bodies of the spec, one file
//!                  per resource in routes/ (conversations, messages, control, users,
//!                  switchboards, integrations, webhooks)
//!   validate.rs    request validation with the spec's rules, errors naming the field (a
//!                  message's in validate/messages.rs)
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
