//! Invalidation.

use tokio::sync::broadcast;

use super::{BoxFuture, StoreError};

/// "The switchboard changed": published by whoever learns it (a refused control call), heard
/// by every cache that holds the routing picture, in every replica.
///
/// Invariants: every subscriber hears every publish made after it subscribed; a subscriber
/// that fell behind or lost its connection hears [`Heard::Lost`] and must drop everything,
/// since it cannot know what it missed.
pub trait Invalidation: Send + Sync + std::fmt::Debug {
    fn publish(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    fn subscribe(&self) -> Subscription;
}

/// What a subscriber hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// The switchboard changed.
    Changed,
    /// Notices may have been missed: drop everything.
    Lost,
    /// No more notices will come.
    Closed,
}

/// A subscription to [`Invalidation`] notices.
#[derive(Debug)]
pub struct Subscription(broadcast::Receiver<Heard>);

impl Subscription {
    /// A subscription fed by `notices`: an implementation forwards what it hears into the
    /// channel, and [`Heard::Lost`] when it may have missed some (a lost connection); a
    /// subscriber that falls behind the channel hears `Lost` too.
    pub(crate) fn from_channel(notices: broadcast::Receiver<Heard>) -> Self {
        Self(notices)
    }

    /// The next notice.
    pub(crate) async fn next(&mut self) -> Heard {
        match self.0.recv().await {
            Ok(heard) => heard,
            Err(broadcast::error::RecvError::Lagged(_)) => Heard::Lost,
            Err(broadcast::error::RecvError::Closed) => Heard::Closed,
        }
    }
}

/// [`Invalidation`] within this process.
#[derive(Debug)]
pub(crate) struct MemoryInvalidation(broadcast::Sender<Heard>);

impl Default for MemoryInvalidation {
    fn default() -> Self {
        Self(broadcast::channel(64).0)
    }
}

impl Invalidation for MemoryInvalidation {
    fn publish(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        // No subscriber yet is not an error: nothing holds a picture to drop.
        let _ = self.0.send(Heard::Changed);
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self) -> Subscription {
        Subscription::from_channel(self.0.subscribe())
    }
}
