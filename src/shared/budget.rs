//! Upstream rate budget.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{BoxFuture, StoreError};

/// What [`RateBudget::grant`] gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    /// Permits granted now (each is one upstream request), at most what was asked for.
    pub granted: u32,
    /// When fewer were granted: how long until the next permit.
    pub(crate) wait: Duration,
    /// Whether the wait is a pause a `Retry-After` imposed (no request may go before it ends).
    pub(crate) paused: bool,
}

/// The upstream rate budget: requests per second with a burst, for the whole fleet.
///
/// Invariants: it grants at most the burst at once and then refills at the current rate; a 429
/// halves the current rate (not below its floor) and takes what was left; a `Retry-After`
/// pauses every grant until it ends; each success raises the rate by a step back to the full
/// rate. (Queueing, the in-flight cap, deadlines and retries stay with each dispatcher.)
pub trait RateBudget: Send + Sync + std::fmt::Debug {
    fn grant(&self, want: u32) -> BoxFuture<'_, Result<Grant, StoreError>>;
    /// Takes one permit if this process can give it now without asking its store (a token in
    /// the bucket, a lease with permits left); `false` when it cannot say so at once, and then
    /// [`Self::grant`] decides.
    fn try_take(&self) -> bool;
    /// The upstream answered 429, with its `Retry-After` if any.
    fn throttled(&self, retry_after: Option<Duration>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// An upstream request succeeded.
    fn succeeded(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The current rate, requests per second (as last known).
    fn rate(&self) -> f64;
    /// Sets a new full rate and burst (a reloaded `rate_limit`); on a shared budget, for every
    /// replica. Answers the full rate and burst now in force. The adaptive rate never rises above
    /// the new full rate; a lower one takes effect at once.
    fn reshape(&self, rate: f64, burst: u32) -> BoxFuture<'_, Result<(f64, u32), StoreError>>;
    /// Learns the budget in force from its store, spending nothing: a shared budget another
    /// replica reshaped or slowed is then what [`Self::rate`] says, even on a replica that sent
    /// nothing since. Nothing to learn for a budget of this process alone.
    fn refresh(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The numbers of a [`RateBudget`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BudgetShape {
    /// The full rate, requests per second.
    pub(crate) rate: f64,
    pub(crate) burst: u32,
    /// The lowest share of the full rate 429s can push the rate down to.
    pub(crate) min_rate_share: f64,
}

/// [`RateBudget`] of this process alone.
#[derive(Debug)]
pub(crate) struct MemoryRateBudget {
    inner: Mutex<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    shape: BudgetShape,
    tokens: f64,
    refilled_at: Instant,
    rate: f64,
    paused_until: Option<Instant>,
}

impl MemoryRateBudget {
    pub(crate) fn new(shape: BudgetShape) -> Self {
        Self {
            inner: Mutex::new(BudgetInner {
                shape,
                tokens: f64::from(shape.burst),
                refilled_at: Instant::now(),
                rate: shape.rate,
                paused_until: None,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, BudgetInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`RateBudget::grant`], which never waits for anything.
    fn grant_now(&self, want: u32) -> Grant {
        let now = Instant::now();
        let mut b = self.inner();
        if let Some(until) = b.paused_until.filter(|u| *u > now) {
            Grant {
                granted: 0,
                wait: until - now,
                paused: true,
            }
        } else {
            b.paused_until = None;
            let elapsed = now.saturating_duration_since(b.refilled_at).as_secs_f64();
            b.tokens = (b.tokens + elapsed * b.rate).min(f64::from(b.shape.burst));
            b.refilled_at = now;
            let granted = (b.tokens.floor().max(0.0) as u32).min(want);
            b.tokens -= f64::from(granted);
            let wait = if granted < want {
                Duration::from_secs_f64(((1.0 - b.tokens) / b.rate.max(0.001)).max(0.0))
            } else {
                Duration::ZERO
            };
            Grant {
                granted,
                wait,
                paused: false,
            }
        }
    }
}

impl RateBudget for MemoryRateBudget {
    fn grant(&self, want: u32) -> BoxFuture<'_, Result<Grant, StoreError>> {
        let grant = self.grant_now(want);
        Box::pin(async move { Ok(grant) })
    }

    fn try_take(&self) -> bool {
        self.grant_now(1).granted == 1
    }

    fn throttled(&self, retry_after: Option<Duration>) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut b = self.inner();
        // What was left up to now is taken: the refill starts again from now, at half the rate.
        let now = Instant::now();
        b.refilled_at = now;
        let floor = b.shape.rate * b.shape.min_rate_share;
        b.rate = (b.rate * 0.5).max(floor);
        b.tokens = b.tokens.min(0.0);
        if let Some(wait) = retry_after {
            let until = Instant::now() + wait;
            b.paused_until = Some(b.paused_until.map_or(until, |p| p.max(until)));
        }
        Box::pin(async { Ok(()) })
    }

    fn succeeded(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut b = self.inner();
        b.rate = (b.rate + b.shape.rate * 0.02).min(b.shape.rate);
        Box::pin(async { Ok(()) })
    }

    fn rate(&self) -> f64 {
        self.inner().rate
    }

    fn reshape(&self, rate: f64, burst: u32) -> BoxFuture<'_, Result<(f64, u32), StoreError>> {
        let mut b = self.inner();
        let was_full = b.rate >= b.shape.rate;
        b.shape.rate = rate;
        b.shape.burst = burst;
        b.rate = if was_full { rate } else { b.rate.min(rate) };
        b.tokens = b.tokens.min(f64::from(burst));
        Box::pin(async move { Ok((rate, burst)) })
    }
}
