//! Work that takes several calls, in one place between the tools and the actors.
//!
//! A tool is "arguments → one call → result": when the answer needs more than one upstream call
//! or actor message (a fallback, a scan, a check before a write, a send that must not happen
//! twice), the steps live here, one module per family, and the tool calls one method. Nothing
//! here speaks MCP or HTTP; the layers, lowest first, are `sunco` → `actors` → `operations` →
//! `mcp` → `server`.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::actors::Actors;
use crate::actors::switchboard::Picture;
use crate::call::Call;
use crate::error::CallError;
use crate::sunco::endpoints::Endpoint;

pub mod claims;
pub(crate) mod conversations;
pub(crate) mod credentials;
pub(crate) mod delivery;
pub(crate) mod messages;
pub(crate) mod sends;
pub(crate) mod switchboard;
pub(crate) mod webhooks;

/// The operations over the running actors.
pub struct Operations {
    pub(crate) actors: Arc<Actors>,
    /// Message sends, at most once per idempotency key.
    pub(crate) sends: sends::Sends,
    /// Cancelled when the server starts shutting down: waits end, answered.
    pub(crate) stopping: tokio_util::sync::CancellationToken,
    /// This replica's waiting claims, grouped so a notice costs a few lookups, not one each.
    pub(crate) lookups: claims::Lookups,
}

impl Operations {
    pub fn new(actors: Arc<Actors>) -> Self {
        let sends = sends::Sends::new(
            actors.dispatcher.clone(),
            actors.tracker.clone(),
            actors.keys.clone(),
        );
        Self {
            actors,
            sends,
            stopping: tokio_util::sync::CancellationToken::new(),
            lookups: claims::Lookups::default(),
        }
    }

    /// The same, its waits ending when `stopping` is cancelled.
    pub(crate) fn stopping_on(mut self, stopping: tokio_util::sync::CancellationToken) -> Self {
        self.stopping = stopping;
        self
    }
}

impl Operations {
    /// One upstream request for `call`, its answer decoded: for a tool whose whole work is one
    /// request.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        call: &Call,
        endpoint: &Endpoint,
    ) -> Result<T, CallError> {
        self.actors.dispatcher.call_json(call, endpoint).await
    }

    /// The routing picture (switchboard and integrations): the cached one, or with `fresh` one
    /// loaded now (which refreshes the cache).
    pub(crate) async fn routing(&self, fresh: bool) -> Result<Arc<Picture>, CallError> {
        self.actors.switchboard.picture(fresh).await
    }
}
