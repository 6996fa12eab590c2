//! [`IdempotencyStore`] on Redis: one record per (conversation, key) for the whole fleet, held
//! by one owner at a time through a lease the owner renews.

use std::time::Instant;

use redis::Script;

use super::{Redis, number, text};
use crate::shared::{
    AcquireError, BoxFuture, Duration, IdempotencyStore, SendLease, SendRecord, SendState,
    StoreError,
};

/// The record is a hash: `m` fingerprint, `s` state (`f` fresh, `u` uncertain, `s` sent),
/// `r` the sent messages (JSON), `o` the owner holding it, `x` when the owner's lease lapses
/// (server time, ms).
///
/// KEYS[1] the record. ARGV: mode, owner, lease (ms), retention (ms), then for `acquire` the
/// fingerprint, for `set` the fingerprint, state and result.
/// Replies: `acquire` {1, fingerprint, state, result} or {0, ms until the lease lapses};
/// `set` and `renew` 1 while the caller owns the record, else 0; `release` 1.
static RECORD: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local k, mode, owner = KEYS[1], ARGV[1], ARGV[2]
local lease, retention = tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', k, 'o', 'x', 'm', 's', 'r')
local held = v[1] and v[1] ~= owner and tonumber(v[2] or 0) > now
if mode == 'acquire' then
  if held then return {0, tonumber(v[2]) - now} end
  if not v[3] then
    v[3], v[4], v[5] = ARGV[5], 'f', ''
    redis.call('HSET', k, 'm', v[3], 's', 'f')
  end
  redis.call('HSET', k, 'o', owner, 'x', now + lease)
  redis.call('PEXPIRE', k, retention)
  return {1, v[3], v[4], v[5] or ''}
end
if v[1] ~= owner then return 0 end
if mode == 'release' then
  redis.call('HDEL', k, 'o', 'x')
  return 1
end
redis.call('HSET', k, 'x', now + lease)
if mode == 'set' then
  redis.call('HSET', k, 'm', ARGV[5], 's', ARGV[6], 'r', ARGV[7])
  redis.call('PEXPIRE', k, retention)
end
return 1
",
    )
});

/// How often a repeat looks again while another replica holds the key, at most.
const POLL: Duration = Duration::from_millis(200);

/// [`IdempotencyStore`] shared by every replica through Redis.
///
/// A lease lasts `lease` after each renewal; the owner renews it every third of that while it
/// holds the key, so a key held by a replica that died is free within `lease`. Choose `lease`
/// a little over one upstream attempt's timeout: an owner cut off from Redis may still finish
/// the attempt it started. A repeat waits up to `max_wait` for the holder, then gets
/// [`AcquireError::Held`].
#[derive(Debug)]
pub(crate) struct RedisIdempotency {
    redis: Redis,
    lease: Duration,
    retention: Duration,
    max_wait: Duration,
}

impl RedisIdempotency {
    pub(crate) fn new(
        redis: Redis,
        lease: Duration,
        retention: Duration,
        max_wait: Duration,
    ) -> Self {
        Self {
            redis,
            lease,
            retention,
            max_wait,
        }
    }
}

struct RedisLease {
    redis: Redis,
    key: String,
    owner: String,
    lease: Duration,
    retention: Duration,
    record: SendRecord,
    renewal: tokio::task::JoinHandle<()>,
}

fn state_code(state: &SendState) -> (&'static str, &str) {
    match state {
        SendState::Fresh => ("f", ""),
        SendState::Uncertain => ("u", ""),
        SendState::Sent(messages) => ("s", messages),
    }
}

impl SendLease for RedisLease {
    fn record(&self) -> &SendRecord {
        &self.record
    }

    fn set(&mut self, record: SendRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (code, result) = state_code(&record.state);
            let mut s = RECORD.key(&self.key);
            s.arg("set")
                .arg(&self.owner)
                .arg(self.lease.as_millis() as u64)
                .arg(self.retention.as_millis() as u64)
                .arg(record.message.to_string())
                .arg(code)
                .arg(result);
            match self.redis.run::<u8>("idempotency.set", &s).await? {
                1 => {
                    self.record = record;
                    Ok(())
                }
                _ => Err(StoreError(
                    "this replica's hold on the idempotency key lapsed (Redis was unreachable longer than the lease)".into(),
                )),
            }
        })
    }
}

impl Drop for RedisLease {
    fn drop(&mut self) {
        self.renewal.abort();
        release(self.redis.clone(), self.key.clone(), self.owner.clone());
    }
}

/// Releases `owner`'s hold on `key` in the background; should that fail, the lease lapses on
/// its own.
fn release(redis: Redis, key: String, owner: String) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut s = RECORD.key(&key);
            s.arg("release").arg(&owner).arg(0).arg(0);
            let _ = redis.run::<u8>("idempotency.release", &s).await;
        });
    }
}

impl IdempotencyStore for RedisIdempotency {
    fn acquire<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        message: u64,
    ) -> BoxFuture<'a, Result<Box<dyn SendLease>, AcquireError>> {
        Box::pin(async move {
            let record_key = self.redis.key(&format!("idem:{scope}:{key}"));
            let owner = format!("{}:{:016x}", self.redis.replica, rand::random::<u64>());
            let give_up = Instant::now() + self.max_wait;
            let mut pause = Duration::from_millis(20);
            loop {
                let mut s = RECORD.key(&record_key);
                s.arg("acquire")
                    .arg(&owner)
                    .arg(self.lease.as_millis() as u64)
                    .arg(self.retention.as_millis() as u64)
                    .arg(message.to_string());
                let reply: Vec<redis::Value> = match self.redis.run("idempotency.acquire", &s).await
                {
                    Ok(reply) => reply,
                    Err(e) => {
                        // Redis may still run the acquire after this replica stopped waiting:
                        // let go of what it may have granted, so no phantom holder keeps the key
                        // for a whole lease.
                        release(self.redis.clone(), record_key, owner);
                        return Err(e.into());
                    }
                };
                if reply.first().map(number) == Some(1.0) {
                    let fingerprint = reply.get(1).and_then(text).unwrap_or_default();
                    let state = match reply.get(2).and_then(text).as_deref() {
                        Some("s") => {
                            SendState::Sent(reply.get(3).and_then(text).unwrap_or_default())
                        }
                        Some("u") => SendState::Uncertain,
                        _ => SendState::Fresh,
                    };
                    let record = SendRecord {
                        message: fingerprint.parse().unwrap_or(message),
                        state,
                    };
                    let renewal = tokio::spawn(renew(
                        self.redis.clone(),
                        record_key.clone(),
                        owner.clone(),
                        self.lease,
                    ));
                    return Ok(Box::new(RedisLease {
                        redis: self.redis.clone(),
                        key: record_key,
                        owner,
                        lease: self.lease,
                        retention: self.retention,
                        record,
                        renewal,
                    }) as Box<dyn SendLease>);
                }
                let lapses_in = Duration::from_millis(reply.get(1).map_or(0.0, number) as u64);
                let now = Instant::now();
                if now >= give_up {
                    return Err(AcquireError::Held {
                        retry_after: lapses_in,
                    });
                }
                tokio::time::sleep(pause.min(lapses_in).min(give_up - now)).await;
                pause = (pause * 2).min(POLL);
            }
        })
    }
}

/// Keeps the lease alive while the owner holds the key.
async fn renew(redis: Redis, key: String, owner: String, lease: Duration) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let mut s = RECORD.key(&key);
        s.arg("renew")
            .arg(&owner)
            .arg(lease.as_millis() as u64)
            .arg(0);
        if let Ok(0) = redis.run::<u8>("idempotency.renew", &s).await {
            tracing::warn!("a held idempotency key was taken over after its lease lapsed");
            return;
        }
    }
}
