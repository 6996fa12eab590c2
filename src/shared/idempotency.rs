//! Idempotency records of sends.

use std::time::Duration;

use super::{BoxFuture, StoreError};

/// How long a key's result is remembered.
pub(crate) const KEY_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Keys remembered at most (in memory).
pub(crate) const KEY_CAPACITY: u64 = 100_000;

/// What has happened to an idempotency key so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendState {
    /// Never sent, or refused before anything was stored.
    Fresh,
    /// Sent at least once without a clear answer: check the conversation before sending again.
    Uncertain,
    /// Stored upstream; the messages as JSON text.
    Sent(String),
}

/// An idempotency key's record: the fingerprint of the message it was first used for, and what
/// happened since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRecord {
    pub message: u64,
    pub state: SendState,
}

/// A held key: one send at a time per key. Dropping it releases the key.
pub trait SendLease: Send {
    fn record(&self) -> &SendRecord;
    /// Stores `record` for the key (kept while the lease is held, and after).
    fn set(&mut self, record: SendRecord) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Why [`IdempotencyStore::acquire`] gave no lease.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another holder (another replica, or one that died and whose lease has not lapsed yet)
    /// kept the key past the store's wait; it is free in `retry_after` at the latest.
    #[error("another holder keeps the key for up to {} ms more", retry_after.as_millis())]
    Held { retry_after: Duration },
}

/// The idempotency records of `send_message`, per conversation (`scope`) and key.
///
/// Invariants: a key never seen starts as `{message, Fresh}` with the fingerprint of the
/// acquiring call; what a lease sets is what the next holder reads; while one lease holds a key,
/// another `acquire` of it waits; keys of different scopes are independent. (A store shared by
/// replicas bounds a lease's life so that a holder that died frees the key, bounds the wait
/// with [`AcquireError::Held`], and a holder that died mid-send leaves the `Uncertain` it set
/// before sending.)
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    fn acquire<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        message: u64,
    ) -> BoxFuture<'a, Result<Box<dyn SendLease>, AcquireError>>;
}

/// [`IdempotencyStore`] in this process's memory: `capacity` keys at most, each kept for
/// `retention`.
#[derive(Debug)]
pub(crate) struct MemoryIdempotency {
    keys: moka::future::Cache<(String, String), std::sync::Arc<tokio::sync::Mutex<SendRecord>>>,
}

impl MemoryIdempotency {
    pub(crate) fn new(capacity: u64, retention: Duration) -> Self {
        Self {
            keys: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(retention)
                .build(),
        }
    }
}

struct MemoryLease(tokio::sync::OwnedMutexGuard<SendRecord>);

impl SendLease for MemoryLease {
    fn record(&self) -> &SendRecord {
        &self.0
    }

    fn set(&mut self, record: SendRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        *self.0 = record;
        Box::pin(async { Ok(()) })
    }
}

impl IdempotencyStore for MemoryIdempotency {
    fn acquire<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        message: u64,
    ) -> BoxFuture<'a, Result<Box<dyn SendLease>, AcquireError>> {
        Box::pin(async move {
            let entry = self
                .keys
                .get_with((scope.to_owned(), key.to_owned()), async {
                    std::sync::Arc::new(tokio::sync::Mutex::new(SendRecord {
                        message,
                        state: SendState::Fresh,
                    }))
                })
                .await;
            Ok(Box::new(MemoryLease(entry.lock_owned().await)) as Box<dyn SendLease>)
        })
    }
}
