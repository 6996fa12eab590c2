//! Work that takes several calls, in one place between the tools and the actors.
//!
//! A tool is "arguments → one call → result": when the answer needs more than one upstream call
//! or actor message (a fallback, a scan, a check before a write, a send that must not happen
//! twice), the steps live here, one module per family, and the tool calls one method. Nothing
//! here speaks MCP or HTTP; the layers, lowest first, are `sunco` → `actors` → `operations` →
//! `mcp` → `server`.

use std::sync::Arc;

use crate::actors::Actors;

pub mod conversations;
pub mod credentials;
pub mod delivery;
pub mod messages;
pub mod remediation;
pub mod sends;
pub mod switchboard;
pub mod webhooks;

/// The operations over the running actors.
pub struct Operations {
    pub actors: Arc<Actors>,
    /// Message sends, at most once per idempotency key.
    pub sends: sends::Sends,
}

impl Operations {
    pub fn new(actors: Arc<Actors>) -> Self {
        let sends = sends::Sends::new(
            actors.dispatcher.clone(),
            actors.tracker.clone(),
            actors.keys.clone(),
        );
        Self { actors, sends }
    }
}
