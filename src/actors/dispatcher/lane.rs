//! The express lane: what the callers and the actor share, so that a call finding nothing
//! waiting starts its own attempt under the same in-flight cap and the same rate budget.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::transport::Transport;
use super::{DispatchLimits, DispatcherHandle};
use crate::actors::auth::AuthHandle;
use crate::shared::RateBudget;
use crate::telemetry::Metrics;

/// What the callers and the actor share: the in-flight count under one cap, the jobs the actor
/// holds, the attempts started, and what a caller needs to start an attempt itself (set when
/// the actor first starts).
#[derive(Default)]
pub(crate) struct Lane {
    pub(super) in_flight: AtomicUsize,
    /// Jobs the actor holds (queued and waiting to retry), as it last published them.
    pub(super) queued: AtomicUsize,
    /// Upstream attempts started, by the actor and the express lane together.
    pub(super) attempts: AtomicU64,
    pub(super) parts: OnceLock<LaneParts>,
}

/// What an attempt needs besides its job and the handle.
pub(super) struct LaneParts {
    /// The upstream rate budget (shared by every replica when the store is).
    pub(super) budget: Arc<dyn RateBudget>,
    pub(super) transport: Transport,
    pub(super) auth: AuthHandle,
    pub(super) limits: DispatchLimits,
    pub(super) metrics: Arc<Metrics>,
}

impl Lane {
    /// Takes an in-flight slot if fewer than `max` are taken.
    pub(super) fn enter(&self, max: usize) -> bool {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a slot [`Self::enter`] took.
    pub(super) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl DispatcherHandle {
    /// The express lane: when no call waits in the actor, an in-flight slot is free and the
    /// budget gives a permit at once, the slot and the permit are taken for the caller to
    /// start the attempt itself.
    pub(super) fn express(&self) -> bool {
        let lane = &self.lane;
        let Some(parts) = lane.parts.get() else {
            return false;
        };
        // A stopped dispatcher (shut down, or between incarnations) takes no calls this way.
        if self.slot.current().is_none()
            || lane.queued.load(Ordering::SeqCst) > 0
            || !lane.enter(parts.limits.max_in_flight)
        {
            return false;
        }
        if !parts.budget.try_take() {
            lane.leave();
            return false;
        }
        lane.attempts.fetch_add(1, Ordering::Relaxed);
        parts
            .metrics
            .in_flight
            .record(lane.in_flight.load(Ordering::Relaxed) as u64, &[]);
        true
    }
}
