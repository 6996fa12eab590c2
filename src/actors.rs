//! The supervised actors that own the hard parts, and the handles the MCP layer calls them by.
//!
//! Each actor is a unit struct with a `Msg` enum as its whole interface. The MCP layer never
//! holds an `ActorRef`: it holds a handle whose [`Slot`] the supervisor refills when it restarts
//! the actor, so a handle keeps working across restarts.

use std::sync::Arc;

use ractor::{ActorRef, Message};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::CallError;

pub(crate) mod auth;
pub mod delivery;
pub mod dispatcher;
pub mod supervisor;
pub mod switchboard;

#[cfg(test)]
mod tests;

pub(crate) use delivery::TrackerHandle;
pub(crate) use dispatcher::DispatcherHandle;
pub use supervisor::{ActorKind, Actors, SupervisorSettings};
pub use switchboard::SwitchboardHandle;

/// Where the current incarnation of an actor can be found. Empty while it restarts.
pub struct Slot<M: Message> {
    name: &'static str,
    tx: watch::Sender<Option<ActorRef<M>>>,
}

impl<M: Message> Slot<M> {
    pub(crate) fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            tx: watch::Sender::new(None),
        })
    }

    pub(crate) fn set(&self, actor: Option<ActorRef<M>>) {
        self.tx.send_replace(actor);
    }

    /// The actor, if one is running now.
    pub(crate) fn current(&self) -> Option<ActorRef<M>> {
        self.tx.borrow().clone()
    }

    /// Sends `msg` to the current incarnation, waiting for a restart to finish until `until`.
    /// A message refused by a dying incarnation is offered to the next one.
    pub(crate) async fn send(&self, mut msg: M, until: Instant) -> Result<(), CallError> {
        let mut rx = self.tx.subscribe();
        loop {
            let current = rx.borrow_and_update().clone();
            if let Some(actor) = current {
                match actor.send_message(msg) {
                    Ok(()) => return Ok(()),
                    Err(ractor::MessagingErr::SendErr(back)) => msg = back,
                    Err(e) => return Err(self.unavailable(e.to_string())),
                }
            }
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(self.unavailable("stopped".into())),
                Err(_) => return Err(self.unavailable("restarting".into())),
            }
        }
    }

    pub(crate) fn unavailable(&self, reason: String) -> CallError {
        CallError::Unavailable {
            component: self.name,
            reason,
        }
    }
}

/// Sends a request built around a reply channel and waits for the answer until `until`.
/// The request is re-offered to the next incarnation if the actor dies before answering.
pub(crate) async fn ask<M, T>(
    slot: &Slot<M>,
    until: Instant,
    make: impl Fn(tokio::sync::oneshot::Sender<T>) -> M,
) -> Result<T, CallError>
where
    M: Message,
{
    // A request goes down with an actor's mailbox when the actor dies; it is offered to the next
    // incarnation, a few times at most (a request that keeps getting dropped is a bug, not bad luck).
    for _ in 0..4 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        slot.send(make(tx), until).await?;
        match tokio::time::timeout_at(until, rx).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(_)) => tokio::task::yield_now().await,
            Err(_) => return Err(slot.unavailable("no answer before the deadline".into())),
        }
    }
    Err(slot.unavailable("the request was dropped unanswered".into()))
}
