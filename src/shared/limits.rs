//! Inbound limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{BoxFuture, StoreError};
use crate::config::RequestRate;

/// Per-token inbound rate limits (token buckets), the same for every replica.
///
/// Invariants: a key starts with a full bucket (`rate.burst` requests at once); it refills at
/// `rate.per_second`; a refused request takes nothing and says how long until one would pass;
/// keys are independent.
pub trait InboundLimits: Send + Sync + std::fmt::Debug {
    /// Takes one request from `key`'s bucket: `Ok(None)` when it passes, `Ok(Some(wait))` when
    /// the bucket is empty for `wait` longer.
    fn take<'a>(
        &'a self,
        key: &'a str,
        rate: RequestRate,
    ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>>;
}

/// [`InboundLimits`] in this process's memory.
#[derive(Debug, Default)]
pub(crate) struct MemoryInboundLimits {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl InboundLimits for MemoryInboundLimits {
    fn take<'a>(
        &'a self,
        key: &'a str,
        rate: RequestRate,
    ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
        Box::pin(async move {
            let now = Instant::now();
            let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            let burst = f64::from(rate.burst);
            let (tokens, at) = buckets.entry(key.to_owned()).or_insert((burst, now));
            *tokens =
                (*tokens + now.duration_since(*at).as_secs_f64() * rate.per_second).min(burst);
            *at = now;
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                Ok(None)
            } else {
                Ok(Some(Duration::from_secs_f64(
                    (1.0 - *tokens) / rate.per_second,
                )))
            }
        })
    }
}
