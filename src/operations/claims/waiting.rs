//! Waiting for work: one call's wait, the lookups this replica's waiters share, the waiting
//! gauge, and the queue's gauges.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::GAUGES_EVERY;
use crate::operations::Operations;
use crate::shared::{ClaimAnswer, ClaimAsk, StoreError, Subscription};
use crate::telemetry::{InProgress, kv};

/// One `claim_conversation` call's wait: what wakes it, and since when it waits.
pub(super) struct Wait {
    pub(super) notices: Subscription,
    pub(super) started: tokio::time::Instant,
    pub(super) deadline: tokio::time::Instant,
    pub(super) next_progress: tokio::time::Instant,
    /// Counted among the waiters once it first waits.
    pub(super) counted: Option<InProgress>,
}

/// This replica's waiters grouped by what they ask (the same filters and integration, the same
/// conversation or none). A group looks in the store one waiter at a time, and once a look found
/// nothing ready, the waiters woken before it wait for the next notice or for the readiness it
/// reported instead of asking again: a notice costs a few lookups per replica, not one per
/// waiter.
#[derive(Debug)]
pub(crate) struct Lookups {
    groups: moka::sync::Cache<GroupKey, Arc<Group>>,
}

/// What makes two asks get the same answer from the store, but for who asks.
type GroupKey = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Duration,
);

impl Default for Lookups {
    fn default() -> Self {
        Self {
            // Groups are few (one per distinct set of filters); unused ones go after an hour.
            groups: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        }
    }
}

impl Lookups {
    pub(super) fn group(&self, ask: &ClaimAsk) -> Arc<Group> {
        let key = (
            ask.conversation_id.clone(),
            ask.integration.clone(),
            ask.channel.clone(),
            ask.active.clone(),
            ask.quiet,
        );
        self.groups.get_with(key, || Arc::new(Group::default()))
    }
}

/// One group of waiters: a turn to look, how many looks found nothing, and the readiness the
/// last of them reported.
#[derive(Debug, Default)]
pub(super) struct Group {
    turn: tokio::sync::Mutex<()>,
    found_nothing: std::sync::atomic::AtomicU64,
    ready_at: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Group {
    /// How many looks have found nothing so far: a waiter notes it when it wakes.
    pub(super) fn looked(&self) -> u64 {
        self.found_nothing
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn ready_at(&self) -> Option<tokio::time::Instant> {
        *self.ready_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the last look said something would be ready, from now.
    pub(super) fn ready_in(&self) -> Option<Duration> {
        self.ready_at()
            .map(|at| at.saturating_duration_since(tokio::time::Instant::now()))
    }

    /// Looks in the store (`look`) in turn, unless a look since `woke_at` found nothing and
    /// what it reported is not ready yet (`None`).
    pub(super) async fn look<'a, F>(
        &self,
        woke_at: u64,
        look: F,
    ) -> Result<Option<ClaimAnswer>, StoreError>
    where
        F: FnOnce() -> crate::shared::BoxFuture<'a, Result<ClaimAnswer, StoreError>>,
    {
        let _turn = self.turn.lock().await;
        let now = tokio::time::Instant::now();
        if self.looked() != woke_at && self.ready_at().is_none_or(|at| at > now) {
            return Ok(None);
        }
        let answer = look().await?;
        if !matches!(answer, ClaimAnswer::Claimed(_)) {
            let ready_at = match &answer {
                ClaimAnswer::Nothing { ready_in } => ready_in.map(|d| now + d),
                _ => None,
            };
            *self.ready_at.lock().unwrap_or_else(|p| p.into_inner()) = ready_at;
            self.found_nothing
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        Ok(Some(answer))
    }
}

/// Reads the queue into the gauges every [`GAUGES_EVERY`] until `stop`.
pub(crate) async fn watch_queue(ops: Arc<Operations>, stop: CancellationToken) {
    loop {
        if let Ok(s) = ops.claims().stats().await {
            let m = &ops.actors.metrics;
            m.queue.record(s.unclaimed, &[kv("state", "unclaimed")]);
            m.queue.record(s.claimed, &[kv("state", "claimed")]);
            m.oldest_wait.record(s.oldest_wait_ms as f64 / 1000.0, &[]);
        }
        tokio::select! {
            () = tokio::time::sleep(GAUGES_EVERY) => {}
            () = stop.cancelled() => return,
        }
    }
}
