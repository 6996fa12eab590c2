//! The Sunshine Conversations REST surface, as data: wire types, one request type per endpoint,
//! cursor pagination, path encoding, credentials, and what a delivery failure calls for.
//!
//! This module owns the *shape* of the upstream API and nothing else: it holds no connection,
//! runs no actor and never retries. Whoever sends a request (the dispatcher) builds it from an
//! [`endpoints::Endpoint`] and decodes the answer with the types in [`wire`]. Keeping it pure
//! lets the simulator, the server and the tests share one vocabulary, while the tests check that
//! vocabulary against the official OpenAPI spec rather than against itself.

pub mod auth;
pub mod commands;
pub mod endpoints;
pub mod events;
pub mod ids;
pub mod paging;
pub mod path;
pub(crate) mod remediation;
pub mod wire;
