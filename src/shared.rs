//! State that several replicas will have to share, each piece behind one small trait.
//!
//! Each trait is shaped by what a networked store can do: its methods are async and fallible
//! ([`StoreError`]), and batch where a round trip matters. The in-memory implementations here
//! are the embedded default (one process, nothing else to run). Each trait's invariants are
//! written down once as a contract ([`contract`]): a set of checks any implementation must pass,
//! run against every implementation.
//!
//! - [`InboundLimits`]: the per-token inbound rate limits of `/mcp`;
//! - [`ConversationIndex`]: the conversations the server has heard of through webhooks;
//! - [`Invalidation`]: "the switchboard changed", to every cache that holds it;
//! - [`IdempotencyStore`]: the idempotency records of `send_message` and the per-key wait;
//! - [`DeliveryStore`]: what the webhooks said about messages, and the event ids received;
//! - [`RateBudget`]: the upstream requests per second of the whole fleet, its pause and its
//!   slow-down after a 429.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::config::RequestRate;

/// A boxed future, for traits used as `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A shared store could not answer (unreachable, too slow). What depends on it fails closed or
/// falls back, as its caller decides; it never treats the silence as an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared store is unavailable: {0}")]
pub struct StoreError(pub String);

mod budget;
#[doc(hidden)]
pub mod contract;
mod delivery;
mod idempotency;
mod index;
mod invalidation;
mod limits;

pub use budget::*;
pub use delivery::*;
pub use idempotency::*;
pub use index::*;
pub use invalidation::*;
pub use limits::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn memory_inbound_limits_keep_the_contract() {
        contract::inbound_limits(&MemoryInboundLimits::default()).await;
    }

    #[tokio::test]
    async fn memory_conversation_index_keeps_the_contract() {
        contract::conversation_index(&MemoryConversationIndex::new(3)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_idempotency_keeps_the_contract() {
        let store = MemoryIdempotency::new(100, Duration::from_secs(3600));
        contract::idempotency(&store).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_delivery_store_keeps_the_contract() {
        let store = MemoryDeliveryStore::new(DeliveryLimits {
            failures: 2,
            event_ids: 3,
            max_age: Duration::from_secs(2),
            ..DeliveryLimits::default()
        });
        contract::delivery(&store).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_rate_budget_keeps_the_contract() {
        let budget = MemoryRateBudget::new(BudgetShape {
            rate: 10.0,
            burst: 3,
            min_rate_share: 0.1,
        });
        contract::rate_budget(&budget).await;
    }

    #[tokio::test]
    async fn memory_invalidation_keeps_the_contract() {
        contract::invalidation(&MemoryInvalidation::default()).await;
    }
}
