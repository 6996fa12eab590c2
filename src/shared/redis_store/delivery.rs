//! [`DeliveryStore`] on Redis: the fleet's one record of what the webhooks said.
//!
//! Keys (under the app's prefix): `clock` a strictly increasing server time (µs) that orders
//! everything; `events` the event ids received (sorted set by arrival); `messages` the messages
//! with events (sorted set by first event), each with `dm:<id>` (its first conversation) and
//! `de:<id>` (its events, a list); `failures` (sorted set by arrival, members
//! `<time>|<JSON>`); `seen` (hash of message id to JSON) ordered by `seen-order`;
//! `last-event`. Everything is trimmed by count and age in the script that writes it.

use redis::Script;

use super::Redis;
use crate::shared::{
    BoxFuture, DeliveryEvents, DeliveryLimits, DeliveryStore, EventRecord, Keep, SeenEntry,
    StoreError,
};

/// Shared by the scripts: the server's time in µs, strictly increasing across calls, and the
/// trimming of the sorted sets.
const PRELUDE: &str = r"
local p = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_age = tonumber(ARGV[6]) * 1000
local oldest = now - max_age
local function tick()
  local last = tonumber(redis.call('GET', p .. 'clock') or 0)
  local at = math.max(now, last + 1)
  redis.call('SET', p .. 'clock', at, 'PX', ARGV[6])
  return at
end
local function trim(set, keep, forget)
  local drop = redis.call('ZRANGEBYSCORE', set, '-inf', '(' .. string.format('%d', oldest))
  local over = redis.call('ZCARD', set) - #drop - keep
  if over > 0 then
    local more = redis.call('ZRANGE', set, #drop, #drop + over - 1)
    for _, m in ipairs(more) do drop[#drop + 1] = m end
  end
  for _, m in ipairs(drop) do
    redis.call('ZREM', set, m)
    if forget then forget(m) end
  end
  if keep > 0 then redis.call('PEXPIRE', set, ARGV[6]) end
end
local function forget_message(m)
  redis.call('DEL', p .. 'dm:' .. m, p .. 'de:' .. m)
end
local function forget_seen(m)
  redis.call('HDEL', p .. 'seen', m)
end
";

/// ARGV: prefix, then the limits (messages, failures, seen messages, event ids, max age in ms),
/// then `mode`, then six fields per entry.
/// `record`: per event its id, kind (`d` delivery, `s` seen, `n` nothing) and, for `d`, the
/// message id, conversation id (or empty), event JSON, failure JSON (or empty); for `s` the
/// message id, conversation id and message JSON. Reply: 1 or 0 per event (first sight).
/// `remember`: the fields of `s` without an event id. `note`: ARGV[8] the time (ms).
static WRITE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r"
local lim_msgs, lim_fail, lim_seen, lim_ids = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local mode = ARGV[7]
local function seen(m, c, msg)
  local at = tick()
  if redis.call('HSET', p .. 'seen', m, cjson.encode({c, msg})) == 1 then
    redis.call('ZADD', p .. 'seen-order', at, m)
  end
  redis.call('PEXPIRE', p .. 'seen', ARGV[6])
end
if mode == 'note' then
  local at = tonumber(ARGV[8])
  if at > tonumber(redis.call('GET', p .. 'last-event') or 0) then
    redis.call('SET', p .. 'last-event', at, 'PX', ARGV[6])
  end
  return 1
end
local out = {}
local i = 8
while i + 5 <= #ARGV do
  local id, kind, m, c, a, b = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  i = i + 6
  if mode == 'remember' then
    seen(m, c, a)
  elseif redis.call('ZSCORE', p .. 'events', id) then
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
    redis.call('ZADD', p .. 'events', tick(), id)
    if kind == 'd' then
      local at = tick()
      if redis.call('ZSCORE', p .. 'messages', m) == false then
        redis.call('ZADD', p .. 'messages', at, m)
      end
      if c ~= '' then redis.call('HSETNX', p .. 'dm:' .. m, 'c', c) end
      redis.call('HSETNX', p .. 'dm:' .. m, 'at', at)
      redis.call('RPUSH', p .. 'de:' .. m, a)
      redis.call('PEXPIRE', p .. 'dm:' .. m, ARGV[6])
      redis.call('PEXPIRE', p .. 'de:' .. m, ARGV[6])
      if b ~= '' then
        redis.call('ZADD', p .. 'failures', at, string.format('%d', at) .. '|' .. b)
      end
    elseif kind == 's' then
      seen(m, c, a)
    end
  end
end
trim(p .. 'events', lim_ids)
trim(p .. 'messages', lim_msgs, forget_message)
trim(p .. 'failures', lim_fail)
trim(p .. 'seen-order', lim_seen, forget_seen)
return out
",
    ))
});

/// ARGV: prefix, the limits (as for writes), mode, then the message id (`events`, `seen`).
/// `events`: {conversation id or '', event, ...} or nil; `failures`: the failures' JSON,
/// newest first; `seen`: the JSON of {conversation id, message} or nil; `last`: the time (ms)
/// or nil.
static READ: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r"
local mode = ARGV[7]
if mode == 'events' then
  local at = redis.call('ZSCORE', p .. 'messages', ARGV[8])
  if at == false or tonumber(at) < oldest then return false end
  local out = {redis.call('HGET', p .. 'dm:' .. ARGV[8], 'c') or ''}
  for _, e in ipairs(redis.call('LRANGE', p .. 'de:' .. ARGV[8], 0, -1)) do out[#out + 1] = e end
  return out
elseif mode == 'failures' then
  return redis.call('ZREVRANGEBYSCORE', p .. 'failures', '+inf', oldest)
elseif mode == 'seen' then
  return redis.call('HGET', p .. 'seen', ARGV[8])
end
return redis.call('GET', p .. 'last-event')
",
    ))
});

/// [`DeliveryStore`] shared by every replica through Redis. Its writes are single scripts, so
/// a batch is recorded whole or not at all (the webhook route answers 503 and SunCo retries).
#[derive(Debug)]
pub(crate) struct RedisDeliveryStore {
    redis: Redis,
    limits: DeliveryLimits,
}

impl RedisDeliveryStore {
    pub(crate) fn new(redis: Redis, limits: DeliveryLimits) -> Self {
        Self { redis, limits }
    }

    fn script(&self, script: &'static Script, mode: &str) -> redis::ScriptInvocation<'static> {
        let mut s = script.prepare_invoke();
        // Every key the scripts touch is under the app's prefix, one Cluster slot.
        s.key(self.redis.key("clock"))
            .arg(&*self.redis.prefix)
            .arg(self.limits.messages)
            .arg(self.limits.failures)
            .arg(self.limits.seen_messages)
            .arg(self.limits.event_ids)
            .arg(self.limits.max_age.as_millis() as u64)
            .arg(mode);
        s
    }
}

impl DeliveryStore for RedisDeliveryStore {
    fn record(&self, events: Vec<EventRecord>) -> BoxFuture<'_, Result<Vec<bool>, StoreError>> {
        Box::pin(async move {
            let mut s = self.script(&WRITE, "record");
            for e in &events {
                match &e.keep {
                    Keep::Delivery(d) => s
                        .arg(&e.event_id)
                        .arg("d")
                        .arg(&d.message_id)
                        .arg(d.conversation_id.as_deref().unwrap_or(""))
                        .arg(d.event.to_string())
                        .arg(d.failure.as_ref().map_or(String::new(), |f| {
                            serde_json::json!({"c": d.conversation_id, "f": f}).to_string()
                        })),
                    Keep::Seen(m) => s
                        .arg(&e.event_id)
                        .arg("s")
                        .arg(&m.message_id)
                        .arg(&m.conversation_id)
                        .arg(&m.message)
                        .arg(""),
                    Keep::Nothing => s.arg(&e.event_id).arg("n").arg("").arg("").arg("").arg(""),
                };
            }
            let firsts: Vec<u8> = self.redis.run("delivery.record", &s).await?;
            Ok(firsts.into_iter().map(|f| f == 1).collect())
        })
    }

    fn remember(&self, messages: Vec<SeenEntry>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // A shortcut for get_message, not a record anyone relies on: no send waits for a
            // Redis known to be down.
            self.redis.unless_degraded()?;
            let mut s = self.script(&WRITE, "remember");
            for m in &messages {
                s.arg("")
                    .arg("s")
                    .arg(&m.message_id)
                    .arg(&m.conversation_id)
                    .arg(&m.message)
                    .arg("");
            }
            let _: redis::Value = self.redis.run("delivery.remember", &s).await?;
            Ok(())
        })
    }

    fn note_event(&self, at: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut s = self.script(&WRITE, "note");
            s.arg(at);
            let _: redis::Value = self.redis.run("delivery.note", &s).await?;
            Ok(())
        })
    }

    fn last_event(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let s = self.script(&READ, "last");
            self.redis.run("delivery.last", &s).await
        })
    }

    fn events<'a>(
        &'a self,
        message_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<DeliveryEvents>, StoreError>> {
        Box::pin(async move {
            let mut s = self.script(&READ, "events");
            s.arg(message_id);
            let reply: Option<Vec<String>> = self.redis.run("delivery.events", &s).await?;
            Ok(reply.map(|mut parts| {
                let conversation = parts.remove(0);
                DeliveryEvents {
                    conversation_id: (!conversation.is_empty()).then_some(conversation),
                    events: parts
                        .iter()
                        .filter_map(|e| serde_json::from_str(e).ok())
                        .collect(),
                }
            }))
        })
    }

    fn failures<'a>(
        &'a self,
        conversation_id: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, StoreError>> {
        Box::pin(async move {
            let s = self.script(&READ, "failures");
            let members: Vec<String> = self.redis.run("delivery.failures", &s).await?;
            Ok(members
                .iter()
                .filter_map(|m| m.split_once('|'))
                .filter_map(|(_, json)| serde_json::from_str::<serde_json::Value>(json).ok())
                .filter(|f| conversation_id.is_none_or(|want| f["c"].as_str() == Some(want)))
                .take(limit)
                .map(|mut f| f["f"].take())
                .collect())
        })
    }

    fn seen<'a>(
        &'a self,
        message_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SeenEntry>, StoreError>> {
        Box::pin(async move {
            self.redis.unless_degraded()?;
            let mut s = self.script(&READ, "seen");
            s.arg(message_id);
            let reply: Option<String> = self.redis.run("delivery.seen", &s).await?;
            Ok(reply
                .and_then(|r| serde_json::from_str::<(String, String)>(&r).ok())
                .map(|(conversation_id, message)| SeenEntry {
                    message_id: message_id.to_owned(),
                    conversation_id,
                    message,
                }))
        })
    }
}
