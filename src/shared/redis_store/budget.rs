//! [`RateBudget`] on Redis: one token bucket for the fleet, spent through short leases.

use std::sync::atomic::{AtomicU32, Ordering};

use std::sync::Arc;
use std::time::Instant;

use redis::Script;

use super::{Redis, number};
use crate::shared::{
    BoxFuture, BudgetShape, Duration, Grant, MemoryRateBudget, Mutex, RateBudget, StoreError,
};

/// The bucket, the adaptive rate and the `Retry-After` pause in one hash, so that one
/// replica's 429 slows every replica. The first replica's `full` rate and `burst` are kept;
/// a replica started with others is told (the reply carries the shared values).
///
/// KEYS[1] the hash. ARGV: want, successes since the last call, full rate, burst, floor share,
/// reserve (permits kept out of the burst for leases in flight), mode (`grant` or `throttle`),
/// `Retry-After` (µs, 0 for none), idle expiry (ms). Mode `reshape` sets the full rate and burst
/// from ARGV (a reloaded `rate_limit`) and grants nothing.
/// Reply: granted, wait (µs), paused (0/1), rate (text), full rate (text), burst.
static BUDGET: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local k = KEYS[1]
local v = redis.call('HMGET', k, 'full', 'burst', 'tokens', 'at', 'rate', 'pause')
local full = tonumber(v[1]) or tonumber(ARGV[3])
local burst = tonumber(v[2]) or tonumber(ARGV[4])
local rate = tonumber(v[5]) or full
if ARGV[7] == 'reshape' then
  local was_full = rate >= full
  full = tonumber(ARGV[3])
  burst = tonumber(ARGV[4])
  if was_full then rate = full else rate = math.min(rate, full) end
end
local floor = full * tonumber(ARGV[5])
local cap = math.max(1, burst - tonumber(ARGV[6]))
local tokens = math.min(cap, tonumber(v[3]) or cap)
local at = tonumber(v[4]) or now
local pause = tonumber(v[6]) or 0
local successes = tonumber(ARGV[2])
if successes > 0 then rate = math.min(full, rate + full * 0.02 * successes) end
local granted, wait, paused = 0, 0, 0
if ARGV[7] == 'throttle' then
  rate = math.max(rate * 0.5, floor)
  local elapsed = math.max(0, now - at) / 1000000
  tokens = math.min(0, math.min(cap, tokens + elapsed * rate))
  at = now
  local ra = tonumber(ARGV[8])
  if ra > 0 then pause = math.max(pause, now + ra) end
elseif pause > now then
  wait = pause - now
  paused = 1
else
  local elapsed = math.max(0, now - at) / 1000000
  tokens = math.min(cap, tokens + elapsed * rate)
  at = now
  granted = math.min(tonumber(ARGV[1]), math.max(0, math.floor(tokens)))
  tokens = tokens - granted
  if granted < tonumber(ARGV[1]) then
    wait = math.ceil((1 - tokens) / math.max(rate, 0.001) * 1000000)
  end
end
local function f(x) return string.format('%.17g', x) end
redis.call('HSET', k, 'full', f(full), 'burst', burst, 'tokens', f(tokens),
  'at', string.format('%d', at), 'rate', f(rate), 'pause', string.format('%d', pause))
redis.call('PEXPIRE', k, ARGV[9])
return {granted, wait, paused, f(rate), f(full), burst}
",
    )
});

/// What the budget is now, read and changed in nothing (not even its expiry): the adaptive
/// rate, the full rate and the burst; nothing when no replica has asked yet.
/// KEYS[1] the hash.
static BUDGET_NOW: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'rate', 'full', 'burst')
if not v[2] then return {} end
return {v[1] or v[2], v[2], v[3]}
",
    )
});

/// The budget's hash is forgotten after an hour without calls (a fleet started later may then
/// bring another rate).
const IDLE_EXPIRY: Duration = Duration::from_secs(3600);

/// [`RateBudget`] shared by every replica through Redis.
///
/// A replica asks for a lease of permits at once, sized by its own recent demand (what it spent
/// per window since it last asked, at most `rate × lease window`), and spends it within the
/// window (what is left then is dropped, never spent late), so a busy replica makes one round
/// trip per lease rather than per request and a quiet one takes only what it uses. A lease may be spent up to one window after
/// its grant; the shared bucket keeps `rate × window` permits out of the burst for that, so the
/// upstream sees at most `rate + burst` requests in any second. Successes are counted locally
/// and reported with the next grant, and only while the rate is below the full rate.
///
/// While Redis cannot be reached the replica spends a bucket of its own with `rate / N` and
/// `burst / N` (N: `--replicas`, or the live replicas at the last heartbeat), so the fleet stays
/// within the budget as long as every replica does the same.
#[derive(Debug)]
pub(crate) struct RedisRateBudget {
    redis: Redis,
    /// The lease window asked for at start; the one in use shrinks to fit the burst.
    base_window: Duration,
    sizing: Mutex<Sizing>,
    local: Mutex<Lease>,
    successes: AtomicU32,
    fallback: Mutex<Option<(u32, Arc<MemoryRateBudget>)>>,
}

/// The shape this replica was given and what follows from it.
#[derive(Debug, Clone, Copy)]
struct Sizing {
    shape: BudgetShape,
    window: Duration,
    reserve: u32,
}

impl Sizing {
    fn of(shape: BudgetShape, window: Duration) -> Self {
        // Kept out of the shared burst for leases spent late: `rate × window`, at most half the
        // burst (the window shrinks to fit; without a burst to spare there is no lease).
        let spare = shape.burst / 2;
        let window = window.min(Duration::from_secs_f64(
            f64::from(spare) / shape.rate.max(0.001),
        ));
        let reserve = ((shape.rate * window.as_secs_f64()) - 1e-9).ceil().max(0.0) as u32;
        Self {
            shape,
            window,
            reserve,
        }
    }
}

#[derive(Debug)]
struct Lease {
    held: u32,
    until: Instant,
    /// Before this, Redis has said no permit is to be had: asking again would only cost a round
    /// trip (the dispatcher looks at every message it handles).
    next: Instant,
    paused: bool,
    /// Permits this replica has spent, and when it last asked Redis with how many spent then:
    /// its own demand sizes the next lease, so a quiet replica takes no permits it will drop.
    spent: u64,
    asked: Option<(Instant, u64)>,
    /// The last ask came back short: demand is then what the budget allowed, not what this
    /// replica wants, so the next lease asks for a full window's worth.
    short: bool,
    rate: f64,
    full: f64,
    told: bool,
    /// The full rate and burst Redis last answered.
    shared: (f64, u32),
}

impl RedisRateBudget {
    /// `window`: how long a lease may be spent (100 ms is a good value; zero asks Redis for
    /// every permit).
    pub(crate) fn new(redis: Redis, shape: BudgetShape, window: Duration) -> Self {
        Self {
            redis,
            base_window: window,
            sizing: Mutex::new(Sizing::of(shape, window)),
            local: Mutex::new(Lease {
                held: 0,
                until: Instant::now(),
                next: Instant::now(),
                paused: false,
                spent: 0,
                asked: None,
                short: false,
                rate: shape.rate,
                full: shape.rate,
                told: false,
                shared: (shape.rate, shape.burst),
            }),
            successes: AtomicU32::new(0),
            fallback: Mutex::new(None),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Lease> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sizing(&self) -> Sizing {
        *self.sizing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bucket spent while Redis is down: `rate / N`, rebuilt when N changes.
    fn fallback(&self) -> Arc<MemoryRateBudget> {
        let n = self.redis.health.replicas();
        let shape = self.sizing().shape;
        let mut guard = self.fallback.lock().unwrap_or_else(|p| p.into_inner());
        match &*guard {
            Some((m, budget)) if *m == n => budget.clone(),
            _ => {
                let share = BudgetShape {
                    rate: shape.rate / f64::from(n),
                    burst: (shape.burst / n).max(1),
                    min_rate_share: shape.min_rate_share,
                };
                let budget = Arc::new(MemoryRateBudget::new(share));
                *guard = Some((n, budget.clone()));
                budget
            }
        }
    }

    async fn call(
        &self,
        want: u32,
        mode: &str,
        retry_after: Option<Duration>,
    ) -> Result<Grant, StoreError> {
        let successes = self.successes.swap(0, Ordering::Relaxed);
        let z = self.sizing();
        let mut s = BUDGET.key(self.redis.key("budget"));
        s.arg(want)
            .arg(successes)
            .arg(z.shape.rate)
            .arg(z.shape.burst)
            .arg(z.shape.min_rate_share)
            .arg(z.reserve)
            .arg(mode)
            .arg(retry_after.map_or(0, |d| d.as_micros() as u64))
            .arg(IDLE_EXPIRY.as_millis() as u64);
        let reply: Vec<redis::Value> = match self.redis.run("budget", &s).await {
            Ok(r) => r,
            Err(e) => {
                self.successes.fetch_add(successes, Ordering::Relaxed);
                return Err(e);
            }
        };
        let at = |i: usize| reply.get(i).map_or(0.0, number);
        let (rate, full, burst) = (at(3), at(4), at(5) as u32);
        let mut local = self.local();
        local.rate = rate;
        local.full = full;
        if !local.told && ((full - z.shape.rate).abs() > 1e-9 || burst != z.shape.burst) {
            local.told = true;
            tracing::warn!(
                shared_rate = full,
                shared_burst = burst,
                "this replica's rate_limit is {}:{}, but the fleet's budget in Redis is {full}:{burst} (another replica started or reloaded with it): the shared budget is used; give every replica the same rate_limit",
                z.shape.rate,
                z.shape.burst
            );
        }
        local.shared = (full, burst);
        drop(local);
        // The fleet's shape is the one spent, also after another replica reshaped it: the
        // leases are sized from it.
        if (full - z.shape.rate).abs() > 1e-9 || burst != z.shape.burst {
            let shape = BudgetShape {
                rate: full,
                burst,
                ..z.shape
            };
            *self.sizing.lock().unwrap_or_else(|p| p.into_inner()) =
                Sizing::of(shape, self.base_window);
        }
        Ok(Grant {
            granted: at(0) as u32,
            wait: Duration::from_micros(at(1) as u64),
            paused: at(2) > 0.0,
        })
    }
}

impl RateBudget for RedisRateBudget {
    fn grant(&self, want: u32) -> BoxFuture<'_, Result<Grant, StoreError>> {
        Box::pin(async move {
            {
                let mut local = self.local();
                let now = Instant::now();
                if local.held >= want && now < local.until {
                    local.held -= want;
                    local.spent += u64::from(want);
                    return Ok(Grant {
                        granted: want,
                        wait: Duration::ZERO,
                        paused: false,
                    });
                }
                local.held = 0;
                if now < local.next {
                    return Ok(Grant {
                        granted: 0,
                        wait: local.next - now,
                        paused: local.paused,
                    });
                }
            }
            let window = self.sizing().window;
            let lease = {
                let mut local = self.local();
                // What this replica spent per window since it last asked, up to what the fleet
                // may spend in a window.
                let now = Instant::now();
                let demand = local.asked.map_or(0.0, |(at, spent)| {
                    let secs = now.saturating_duration_since(at).as_secs_f64().max(0.001);
                    (local.spent - spent) as f64 / secs
                });
                local.asked = Some((now, local.spent));
                let most = (local.rate * window.as_secs_f64()).ceil();
                let wanted = if local.short {
                    most
                } else {
                    (demand * window.as_secs_f64()).ceil().min(most)
                };
                (wanted as u32).max(want)
            };
            // While Redis is known down, no call waits for it: the heartbeat finds it back.
            if self.redis.health.is_degraded() {
                return self.fallback().grant(want).await;
            }
            // Spent within most of the window, counted from before the round trip: the grant
            // was made after this instant, and the requests reach the upstream a little later.
            let asked_at = Instant::now();
            match self.call(lease, "grant", None).await {
                Ok(grant) => {
                    let given = grant.granted.min(want);
                    let mut local = self.local();
                    local.spent += u64::from(given);
                    local.short = grant.granted < lease;
                    local.held = grant.granted - given;
                    local.until = asked_at + window.mul_f64(0.8);
                    if given < want {
                        // Short of permits, the fleet is at its budget: ask again after half a
                        // window (or when the pause ends), not for each permit, so the replicas
                        // make about one round trip per permit between them; any longer and the
                        // shared bucket, full, would drop permits.
                        let wait = grant.wait.max(window / 2).min(window.max(grant.wait));
                        local.next = Instant::now() + wait;
                        local.paused = grant.paused;
                        return Ok(Grant {
                            granted: given,
                            wait,
                            paused: grant.paused,
                        });
                    }
                    Ok(Grant {
                        granted: given,
                        wait: if given == want {
                            Duration::ZERO
                        } else {
                            grant.wait
                        },
                        paused: grant.paused,
                    })
                }
                Err(_) => self.fallback().grant(want).await,
            }
        })
    }

    fn try_take(&self) -> bool {
        let mut local = self.local();
        if local.held >= 1 && Instant::now() < local.until {
            local.held -= 1;
            local.spent += 1;
            true
        } else {
            false
        }
    }

    fn throttled(&self, retry_after: Option<Duration>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            {
                let mut local = self.local();
                local.held = 0;
                // The next grant asks Redis, and learns the pause this 429 set.
                local.next = Instant::now();
            }
            match self.call(0, "throttle", retry_after).await {
                Ok(_) => Ok(()),
                Err(_) => self.fallback().throttled(retry_after).await,
            }
        })
    }

    fn succeeded(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        {
            // Raised here as the script will raise it when it hears of the success.
            let mut local = self.local();
            if local.rate < local.full {
                local.rate = (local.rate + local.full * 0.02).min(local.full);
                self.successes.fetch_add(1, Ordering::Relaxed);
            }
        }
        Box::pin(async move {
            if self.redis.health.is_degraded() {
                return self.fallback().succeeded().await;
            }
            Ok(())
        })
    }

    fn rate(&self) -> f64 {
        if self.redis.health.is_degraded() {
            return self.fallback().rate();
        }
        self.local().rate
    }

    fn reshape(&self, rate: f64, burst: u32) -> BoxFuture<'_, Result<(f64, u32), StoreError>> {
        Box::pin(async move {
            {
                let mut sizing = self.sizing.lock().unwrap_or_else(|p| p.into_inner());
                let shape = BudgetShape {
                    rate,
                    burst,
                    ..sizing.shape
                };
                *sizing = Sizing::of(shape, self.base_window);
            }
            // The share spent while Redis is down follows the new shape.
            *self.fallback.lock().unwrap_or_else(|p| p.into_inner()) = None;
            {
                let mut local = self.local();
                local.held = 0;
                local.next = Instant::now();
                local.told = false;
            }
            self.call(0, "reshape", None).await?;
            Ok(self.local().shared)
        })
    }

    fn refresh(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // While Redis is down the replica spends its own share; the heartbeat finds it back.
            if self.redis.health.is_degraded() {
                return Ok(());
            }
            let s = BUDGET_NOW.key(self.redis.key("budget"));
            let reply: Vec<redis::Value> = self.redis.run("budget_now", &s).await?;
            if reply.len() < 3 {
                return Ok(());
            }
            let (rate, full, burst) = (number(&reply[0]), number(&reply[1]), number(&reply[2]));
            let mut local = self.local();
            local.rate = rate.min(full);
            local.full = full;
            local.shared = (full, burst as u32);
            Ok(())
        })
    }
}
