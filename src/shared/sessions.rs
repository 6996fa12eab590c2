//! Who opened each MCP session (the 2025-11-25 protocol's `Mcp-Session-Id`), shared by every
//! replica: a session answers only its owner wherever it is used, and a `DELETE` ends it
//! everywhere.

use std::time::Duration;

use tokio::sync::broadcast;

use super::{BoxFuture, StoreError};

/// The sessions' owners.
///
/// Invariants: [`owner`](SessionOwners::owner) answers what [`record`](SessionOwners::record)
/// stored, on every replica, until [`end`](SessionOwners::end) (or [`SESSION_TTL`] without
/// use): then `None` everywhere, and every replica's [`ended`](SessionOwners::ended)
/// hears the id.
pub(crate) trait SessionOwners: Send + Sync + std::fmt::Debug {
    /// Who opened `id` (a profile's principal); `None` when no replica knows the session (never
    /// opened, ended or expired).
    fn owner<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>>;
    /// `owner` opened `id`.
    fn record<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// `id` ended (its client sent `DELETE`): unknown everywhere from now on.
    fn end<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The sessions ended anywhere, as they end, for closing what this replica holds of them.
    fn ended(&self) -> broadcast::Receiver<String>;
}

/// How long a session is known after it was last used.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// [`SessionOwners`] of one process.
#[derive(Debug)]
pub(crate) struct MemorySessionOwners {
    owners: moka::future::Cache<String, String>,
    ended: broadcast::Sender<String>,
}

impl MemorySessionOwners {
    pub(crate) fn new() -> Self {
        Self {
            owners: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(SESSION_TTL)
                .build(),
            ended: broadcast::channel(64).0,
        }
    }
}

impl SessionOwners for MemorySessionOwners {
    fn owner<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move { Ok(self.owners.get(id).await) })
    }

    fn record<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.owners.insert(id.to_owned(), owner.to_owned()).await;
            Ok(())
        })
    }

    fn end<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.owners.invalidate(id).await;
            let _ = self.ended.send(id.to_owned());
            Ok(())
        })
    }

    fn ended(&self) -> broadcast::Receiver<String> {
        self.ended.subscribe()
    }
}
