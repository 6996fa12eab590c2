//! [`ClaimStore`] in this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{
    ClaimAnswer, ClaimAsk, ClaimStore, Claimed, QueueStats, Refusal, Release, SCAN, Token,
    WorkEntry, WorkNote, decide,
};
use crate::shared::{BoxFuture, Invalidation, MemoryInvalidation, StoreError, Subscription};
use crate::sunco::ids::now_unix_ms;

/// [`ClaimStore`] in this process's memory, on the process's clock.
#[derive(Debug)]
pub(crate) struct MemoryClaims {
    max_age: Duration,
    capacity: usize,
    inner: Mutex<HashMap<String, WorkEntry>>,
    notices: MemoryInvalidation,
    clock: Clock,
}

/// The process's clock in Unix ms, advancing with tokio's (so paused time pauses it).
#[derive(Debug)]
struct Clock {
    start_ms: i64,
    start: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Self {
            start_ms: now_unix_ms(),
            start: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> i64 {
        self.start_ms + self.start.elapsed().as_millis() as i64
    }
}

impl MemoryClaims {
    pub(crate) fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            max_age,
            capacity: capacity.max(1),
            inner: Mutex::new(HashMap::new()),
            notices: MemoryInvalidation::default(),
            clock: Clock::new(),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, HashMap<String, WorkEntry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the token's entry (a fresh one when unknown), at the clock's now.
    fn on_entry<T>(
        &self,
        token: &Token,
        f: impl FnOnce(&mut WorkEntry, i64) -> T,
    ) -> BoxFuture<'_, Result<T, StoreError>>
    where
        T: Send + 'static,
    {
        let now = self.clock.now();
        let mut inner = self.inner();
        let mut missing = WorkEntry::default();
        let e = inner
            .get_mut(&token.conversation_id)
            .unwrap_or(&mut missing);
        let out = f(e, now);
        Box::pin(async move { Ok(out) })
    }
}

impl ClaimStore for MemoryClaims {
    fn note(&self, notes: Vec<WorkNote>) -> BoxFuture<'_, Result<(), StoreError>> {
        let now = self.clock.now();
        let mut woke = false;
        {
            let mut inner = self.inner();
            for n in &notes {
                let e = inner.entry(n.conversation_id.clone()).or_default();
                woke |= decide::note(e, n, now);
            }
            let oldest = now - self.max_age.as_millis() as i64;
            inner.retain(|_, e| e.touched >= oldest);
            while inner.len() > self.capacity {
                let Some(id) = inner
                    .iter()
                    .min_by_key(|(_, e)| e.touched)
                    .map(|(id, _)| id.clone())
                else {
                    break;
                };
                inner.remove(&id);
            }
        }
        Box::pin(async move {
            if woke {
                self.notices.publish().await?;
            }
            Ok(())
        })
    }

    fn claim<'a>(&'a self, ask: &'a ClaimAsk) -> BoxFuture<'a, Result<ClaimAnswer, StoreError>> {
        let now = self.clock.now();
        let mut inner = self.inner();
        let answer = match &ask.conversation_id {
            Some(id) => match inner.get_mut(id) {
                None => ClaimAnswer::NotWaiting,
                Some(e) => claim_one(e, id, ask, now),
            },
            None => {
                let mut order: Vec<(i64, String)> = inner
                    .iter()
                    .filter_map(|(id, e)| decide::order(e).map(|o| (o, id.clone())))
                    .collect();
                order.sort();
                let mut soonest: Option<i64> = None;
                let mut found = None;
                for (_, id) in order.into_iter().take(SCAN) {
                    let Some(e) = inner.get_mut(&id) else {
                        continue;
                    };
                    match decide::ready_in(e, ask, now) {
                        Ok(0) => {
                            found = Some(decide::take(e, &id, ask, now));
                            break;
                        }
                        Ok(ms) => soonest = Some(soonest.map_or(ms, |s| s.min(ms))),
                        Err(_) => {}
                    }
                }
                match found {
                    Some(c) => ClaimAnswer::Claimed(Box::new(c)),
                    None => ClaimAnswer::Nothing {
                        ready_in: soonest.map(|ms| Duration::from_millis(ms as u64)),
                    },
                }
            }
        };
        Box::pin(async move { Ok(answer) })
    }

    fn renew<'a>(
        &'a self,
        holder: &'a str,
        token: &'a Token,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Result<Claimed, Refusal>, StoreError>> {
        self.on_entry(token, |e, now| decide::renew(e, holder, token, lease, now))
    }

    fn check<'a>(
        &'a self,
        holder: &'a str,
        token: &'a Token,
        peek: bool,
    ) -> BoxFuture<'a, Result<Result<(), Refusal>, StoreError>> {
        self.on_entry(token, |e, now| {
            if peek {
                // Checked on a copy: nothing changes.
                decide::check(&mut e.clone(), holder, token, now, true)
            } else {
                decide::check(e, holder, token, now, false)
            }
        })
    }

    fn release<'a>(
        &'a self,
        holder: &'a str,
        token: &'a Token,
        how: Release,
    ) -> BoxFuture<'a, Result<Result<Option<i64>, Refusal>, StoreError>> {
        self.on_entry(token, |e, now| decide::release(e, holder, token, how, now))
    }

    fn holds<'a>(
        &'a self,
        conversation_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<i64>>, StoreError>> {
        let now = self.clock.now();
        let inner = self.inner();
        let out = conversation_ids
            .iter()
            .map(|id| {
                inner
                    .get(id)
                    .and_then(|e| e.claim.as_ref())
                    .map(|c| c.expires)
                    .filter(|x| *x > now)
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, StoreError>> {
        let now = self.clock.now();
        let inner = self.inner();
        let mut s = QueueStats::default();
        for e in inner.values() {
            let Some(first) = e.pending.first() else {
                continue;
            };
            if e.claim.as_ref().is_some_and(|c| c.expires > now) {
                s.claimed += 1;
            } else {
                s.unclaimed += 1;
            }
            s.oldest_wait_ms = s.oldest_wait_ms.max((now - first.learnt).max(0) as u64);
        }
        Box::pin(async move { Ok(s) })
    }

    fn subscribe(&self) -> Subscription {
        self.notices.subscribe()
    }
}

/// A claim of the conversation `id` asked for by name.
fn claim_one(e: &mut WorkEntry, id: &str, ask: &ClaimAsk, now: i64) -> ClaimAnswer {
    match decide::ready_in(e, ask, now) {
        Err(a) => a,
        Ok(_) if e.claim.as_ref().is_some_and(|c| c.expires > now) => {
            let c = e.claim.as_ref().expect("checked");
            ClaimAnswer::Held {
                expires: c.expires,
                yours: c.holder == ask.holder,
            }
        }
        // Asked for by name, it is handed out without waiting for the quiet period: the
        // caller chose it.
        Ok(_) => ClaimAnswer::Claimed(Box::new(decide::take(e, id, ask, now))),
    }
}
