//! [`InboundLimits`] on Redis: one token bucket per token for the whole fleet.

use redis::Script;

use super::Redis;
use crate::shared::{
    BoxFuture, Duration, InboundLimits, MemoryInboundLimits, RequestRate, StoreError,
};

/// KEYS[1] the token's bucket. ARGV: rate (per second), burst.
/// Reply: 0 when the request passes, else the wait in µs.
static TAKE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1]) or burst
local at = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000000 * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.max(1, math.ceil((1 - tokens) / rate * 1000000))
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
",
    )
});

/// [`InboundLimits`] shared by every replica through Redis. While Redis cannot be reached each
/// replica limits on its own at `rate / N` (N as for the budget's fallback).
#[derive(Debug)]
pub(crate) struct RedisInboundLimits {
    redis: Redis,
    fallback: MemoryInboundLimits,
}

impl RedisInboundLimits {
    pub(crate) fn new(redis: Redis) -> Self {
        Self {
            redis,
            fallback: MemoryInboundLimits::default(),
        }
    }
}

impl InboundLimits for RedisInboundLimits {
    fn take<'a>(
        &'a self,
        key: &'a str,
        rate: RequestRate,
    ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
        Box::pin(async move {
            let mut s = TAKE.key(self.redis.key(&format!("inbound:{key}")));
            s.arg(rate.per_second).arg(rate.burst);
            // While Redis is known down, no request waits for it: the heartbeat finds it back.
            let shared = if self.redis.health.is_degraded() {
                Err(())
            } else {
                self.redis.run::<u64>("inbound", &s).await.map_err(drop)
            };
            match shared {
                Ok(0) => Ok(None),
                Ok(wait) => Ok(Some(Duration::from_micros(wait))),
                Err(()) => {
                    let n = self.redis.health.replicas();
                    let share = RequestRate {
                        per_second: rate.per_second / f64::from(n),
                        burst: (rate.burst / n).max(1),
                    };
                    self.fallback.take(key, share).await
                }
            }
        })
    }
}
