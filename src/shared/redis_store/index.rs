//! [`ConversationIndex`] on Redis: one index of the conversations for the whole fleet.
//!
//! Keys (under the app's prefix): `idx:c:<id>` a hash per conversation (`la` last activity,
//! `ca` created, `ua` awaiting a reply, `ch` the last user channel, `lm` when the last message
//! was sent, `as`/`ps` the active and pending switchboard integrations, `co` when the control
//! state was set; times in Unix ms); `idx:activity` the conversations by last activity;
//! `idx:removed` the removed ones by removal time; `idx:since` the index's reach (see
//! [`ConversationIndex::reach`]).

use redis::Script;

use super::Redis;
use crate::shared::{
    BoxFuture, Change, ConversationEntry, ConversationIndex, ConversationNote, Duration, StoreError,
};

/// The merge of [`super::super::merge`], as one script. ARGV: prefix, capacity, max age (ms),
/// then five fields per note: id, time (ms), kind (`c` created, `r` removed, `m` message, `k`
/// control, `s` control read from the API, `a` activity), and for `m` "1"/"0" (from the user)
/// and the channel (or ""), for `k` and `s` the active and pending integration ids ("" for
/// none).
static APPLY: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local p, cap, max_age = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local act, rem, sk = p .. 'idx:activity', p .. 'idx:removed', p .. 'idx:since'
local function d(x) return string.format('%d', x) end
local since = tonumber(redis.call('GET', sk))
if not since then
  since = now
  for j = 5, #ARGV, 5 do since = math.min(since, tonumber(ARGV[j])) end
end
local i = 4
while i + 4 <= #ARGV do
  local id, at, kind, a, b = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local k = p .. 'idx:c:' .. id
  local removed = redis.call('ZSCORE', rem, id)
  if removed and at <= tonumber(removed) then
    -- a note from before the removal
  elseif kind == 'r' then
    redis.call('DEL', k)
    redis.call('ZREM', act, id)
    redis.call('ZADD', rem, at, id)
  elseif kind == 's' then
    -- control read from the API: only a known conversation, and no activity
    local co = redis.call('HGET', k, 'co')
    if redis.call('EXISTS', k) == 1 and (not co or at >= tonumber(co)) then
      redis.call('HSET', k, 'co', d(at))
      if a ~= '' then redis.call('HSET', k, 'as', a) else redis.call('HDEL', k, 'as') end
      if b ~= '' then redis.call('HSET', k, 'ps', b) else redis.call('HDEL', k, 'ps') end
    end
  else
    local v = redis.call('HMGET', k, 'la', 'lm', 'co', 'ca')
    local la = math.max(tonumber(v[1]) or at, at)
    local lm, co, ca = tonumber(v[2]), tonumber(v[3]), tonumber(v[4])
    redis.call('HSET', k, 'la', d(la))
    if kind == 'c' then
      redis.call('HSET', k, 'ca', d(ca and math.min(ca, at) or at))
    elseif kind == 'm' and (not lm or at >= lm) then
      redis.call('HSET', k, 'lm', d(at), 'ua', a)
      if a == '1' and b ~= '' then redis.call('HSET', k, 'ch', b) end
    elseif kind == 'k' and (not co or at >= co) then
      redis.call('HSET', k, 'co', d(at))
      if a ~= '' then redis.call('HSET', k, 'as', a) else redis.call('HDEL', k, 'as') end
      if b ~= '' then redis.call('HSET', k, 'ps', b) else redis.call('HDEL', k, 'ps') end
    end
    redis.call('PEXPIRE', k, max_age)
    redis.call('ZADD', act, la, id)
  end
end
local function forget(ids)
  for _, id in ipairs(ids) do
    redis.call('DEL', p .. 'idx:c:' .. id)
    redis.call('ZREM', act, id)
  end
end
local oldest = now - max_age
forget(redis.call('ZRANGEBYSCORE', act, '-inf', '(' .. d(oldest)))
since = math.max(since, oldest)
local over = redis.call('ZCARD', act) - cap
if over > 0 then
  local evicted = redis.call('ZRANGE', act, 0, over - 1, 'WITHSCORES')
  local ids = {}
  for j = 1, #evicted, 2 do
    ids[#ids + 1] = evicted[j]
    since = math.max(since, tonumber(evicted[j + 1]))
  end
  forget(ids)
end
redis.call('SET', sk, d(since), 'PX', max_age)
redis.call('ZREMRANGEBYSCORE', rem, '-inf', '(' .. d(oldest))
over = redis.call('ZCARD', rem) - cap
if over > 0 then redis.call('ZREMRANGEBYRANK', rem, 0, over - 1) end
redis.call('PEXPIRE', act, max_age)
redis.call('PEXPIRE', rem, max_age)
return 1
",
    )
});

/// ARGV: prefix, mode (`one` with the id, `recent` with the limit, `reach`). `one` and `recent`
/// answer a list of `HGETALL` replies, each with its id first.
static READ: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local p, mode = ARGV[1], ARGV[2]
local act = p .. 'idx:activity'
if mode == 'reach' then
  return redis.call('GET', p .. 'idx:since')
end
local ids
if mode == 'one' then ids = {ARGV[3]} else ids = redis.call('ZREVRANGE', act, 0, tonumber(ARGV[3]) - 1) end
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', p .. 'idx:c:' .. id)
  if #h > 0 then
    table.insert(h, 1, id)
    out[#out + 1] = h
  end
end
return out
",
    )
});

/// [`ConversationIndex`] shared by every replica through Redis: `capacity` conversations at
/// most, each forgotten after `max_age` without activity.
#[derive(Debug)]
pub(crate) struct RedisConversationIndex {
    redis: Redis,
    capacity: usize,
    max_age: Duration,
}

impl RedisConversationIndex {
    pub(crate) fn new(redis: Redis, capacity: usize, max_age: Duration) -> Self {
        Self {
            redis,
            capacity: capacity.max(1),
            max_age,
        }
    }

    async fn read(&self, mode: &str, arg: &str) -> Result<Vec<ConversationEntry>, StoreError> {
        let mut s = READ.key(self.redis.key("idx:activity"));
        s.arg(&*self.redis.prefix).arg(mode).arg(arg);
        let rows: Vec<Vec<String>> = self.redis.run("index.read", &s).await?;
        Ok(rows.into_iter().map(entry_of).collect())
    }
}

/// An entry from its id and its hash's fields.
fn entry_of(row: Vec<String>) -> ConversationEntry {
    let mut row = row.into_iter();
    let mut e = ConversationEntry {
        conversation_id: row.next().unwrap_or_default(),
        last_message_at: i64::MIN,
        control_at: i64::MIN,
        ..ConversationEntry::default()
    };
    while let (Some(field), Some(value)) = (row.next(), row.next()) {
        let ms = || value.parse::<i64>().unwrap_or(0);
        match field.as_str() {
            "la" => e.last_activity_at = ms(),
            "ca" => e.created_at = Some(ms()),
            "ua" => e.awaiting_reply = value == "1",
            "ch" => e.last_user_channel = Some(value),
            "lm" => e.last_message_at = ms(),
            "co" => e.control_at = ms(),
            "as" => e.active_switchboard_integration = Some(value),
            "ps" => e.pending_switchboard_integration = Some(value),
            _ => {}
        }
    }
    e
}

impl ConversationIndex for RedisConversationIndex {
    fn apply(&self, notes: Vec<ConversationNote>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut s = APPLY.key(self.redis.key("idx:activity"));
            s.arg(&*self.redis.prefix)
                .arg(self.capacity)
                .arg(self.max_age.as_millis() as u64);
            for n in &notes {
                let (kind, a, b) = match &n.change {
                    Change::Created => ("c", "", ""),
                    Change::Removed => ("r", "", ""),
                    Change::Activity => ("a", "", ""),
                    Change::Message { from_user, channel } => (
                        "m",
                        if *from_user { "1" } else { "0" },
                        channel.as_deref().unwrap_or(""),
                    ),
                    Change::Control { active, pending } => (
                        "k",
                        active.as_deref().unwrap_or(""),
                        pending.as_deref().unwrap_or(""),
                    ),
                    Change::ControlSeen { active, pending } => (
                        "s",
                        active.as_deref().unwrap_or(""),
                        pending.as_deref().unwrap_or(""),
                    ),
                };
                s.arg(&n.conversation_id).arg(n.at).arg(kind).arg(a).arg(b);
            }
            let _: i64 = self.redis.run("index.apply", &s).await?;
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConversationEntry>, StoreError>> {
        Box::pin(async move { Ok(self.read("one", conversation_id).await?.pop()) })
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<ConversationEntry>, StoreError>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(vec![]);
            }
            // Lua reads the limit as a number: keep it an exact integer.
            let limit = limit.min(1 << 30);
            self.read("recent", &limit.to_string()).await
        })
    }

    fn reach(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let mut s = READ.key(self.redis.key("idx:activity"));
            s.arg(&*self.redis.prefix).arg("reach").arg("");
            let first: Option<String> = self.redis.run("index.reach", &s).await?;
            Ok(first.and_then(|f| f.parse::<f64>().ok()).map(|f| f as i64))
        })
    }
}
