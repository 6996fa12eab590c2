//! [`ClaimStore`] on Redis: one queue and one set of claims for the whole fleet, each decision
//! one script on the Redis server's clock.
//!
//! Keys (under the app's prefix): `wq:c:<id>` the conversation's entry as JSON (the fields of
//! [`WorkEntry`](crate::shared::WorkEntry), short names), expiring `max_age` after its last change; `wq:queue` the
//! conversations with unanswered user messages, scored by their place in the queue; the
//! channel `work-arrived` tells every replica's waiters that work may have arrived. The
//! scripts mirror [`crate::shared::claims::decide`] line for line.

use std::time::Duration;

use redis::Script;
use serde::Deserialize;

use super::{Redis, RedisInvalidation};
use crate::shared::{
    BoxFuture, ClaimAnswer, ClaimAsk, ClaimStore, Claimed, Invalidation, Pending, QueueStats,
    Refusal, Release, StoreError, Subscription, Token, WorkChange, WorkNote,
};

/// What every script starts with: the clock, loading and saving an entry, its place in the
/// queue, a lapse, and the holder's claim.
const PRELUDE: &str = r"
local p, max_age = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local q = p .. 'wq:queue'
local function load(id)
  local s = redis.call('GET', p .. 'wq:c:' .. id)
  if s then
    local e = cjson.decode(s)
    if type(e.p) ~= 'table' then e.p = {} end
    return e, true
  end
  return {p = {}, sq = 0, ba = 0, co = 0, f = 0, t = now}, false
end
local function order(e)
  if #e.p == 0 then return nil end
  local first = e.p[1].l
  if e.rq then return math.max(e.rq, first) end
  return first
end
local function save(id, e)
  local o = order(e)
  local pend = e.p
  if #pend == 0 then e.p = nil end
  redis.call('SET', p .. 'wq:c:' .. id, cjson.encode(e), 'PX', max_age)
  e.p = pend
  if o then redis.call('ZADD', q, o, id) else redis.call('ZREM', q, id) end
end
local function lapse(e)
  if e.c and e.c.e <= now then
    e.c = nil
    e.en = 'lapsed'
    return true
  end
  return false
end
local function holding(e, holder, fence, secret)
  if fence > (e.f or 0) or fence == 0 then return nil, {k = 'unknown'} end
  if fence < e.f then return nil, {k = 'lost', reason = 'taken', fresh = false} end
  local fresh = lapse(e)
  local c = e.c
  if not c and e.ks ~= secret then return nil, {k = 'unknown'} end
  if not c then return nil, {k = 'lost', reason = e.en or 'released', fresh = fresh} end
  if c.k ~= secret then return nil, {k = 'unknown'} end
  if c.h ~= holder then return nil, {k = 'not_yours'} end
  return c, nil
end
local function view(e, id, fence, secret, expires, shown, lapsed)
  return {k = 'claimed', id = id, f = fence, secret = secret, e = expires, p = e.p,
    shown = shown, as = e.as, ch = e.ch, lapsed = lapsed, now = now}
end
";

/// ARGV: prefix, max age (ms), then five fields per note: id, time (ms), kind (`u` user
/// message, `b` business message, `k` control, `r` removed), then for `u` the message id and
/// the channel ("" for none), for `b` the claim's fence ("" when sent without one), for `k` the
/// active integration ("" for none). Answers 1 when work may have arrived.
static NOTE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r"
local woke = 0
local i = 3
while i + 4 <= #ARGV do
  local id, at, kind, a, b = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local e = load(id)
  e.t = now
  if kind == 'u' then
    if type(e.rc) ~= 'table' then e.rc = {} end
    local known = at < (e.ba or 0)
    for _, x in ipairs(e.rc) do if x == a then known = true end end
    if not known then
      e.rc[#e.rc + 1] = a
      if #e.rc > 64 then table.remove(e.rc, 1) end
      e.sq = (e.sq or 0) + 1
      if b ~= '' then e.ch = b end
      local place = #e.p + 1
      for j, x in ipairs(e.p) do
        if x.a > at then place = j break end
      end
      table.insert(e.p, place, {id = a, l = now, a = at, s = e.sq})
      if #e.p > 50 then
        local oldest = e.p[1].l
        table.remove(e.p, 1)
        e.p[1].l = math.min(e.p[1].l, oldest)
      end
      woke = 1
    end
  elseif kind == 'b' then
    if a == '' then
      e.ba = math.max(e.ba or 0, at)
      local kept = {}
      for _, x in ipairs(e.p) do if x.a > e.ba then kept[#kept + 1] = x end end
      e.p = kept
    end
  elseif kind == 'k' then
    if at >= (e.co or 0) then
      e.co = at
      if a ~= '' then e.as = a else e.as = nil end
      if e.c and e.c.i and e.c.i ~= e.as then
        e.c = nil
        e.en = 'handed_over'
      end
      woke = 1
    end
  elseif kind == 'r' then
    local en = nil
    if e.c then en = 'removed' end
    e = {p = {}, sq = 0, ba = 0, co = 0, f = e.f or 0, rc = e.rc, en = en, ks = e.ks, t = now}
  end
  save(id, e)
end
return woke
"
    ))
});

/// ARGV: prefix, max age, holder, secret, conversation ("" for any), integration, channel,
/// active ("" for none), quiet (ms), lease (ms), scan. Answers JSON.
static CLAIM: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r"
local holder, secret, want = ARGV[3], ARGV[4], ARGV[5]
local integ, chan, act = ARGV[6], ARGV[7], ARGV[8]
local quiet, lease, scan = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local function ready_in(e)
  if #e.p == 0 then return nil, {k = 'not_waiting'} end
  if integ ~= '' and e.as and e.as ~= integ then return nil, {k = 'not_in_control', as = e.as} end
  if (act ~= '' and act ~= e.as) or (chan ~= '' and chan ~= e.ch) then return nil, {k = 'nothing'} end
  local quiet_from = now
  for j, x in ipairs(e.p) do
    if j == 1 or x.l > quiet_from then quiet_from = x.l end
  end
  local free_at = now
  if e.c then free_at = e.c.e end
  return math.max(math.max(quiet_from + quiet, free_at) - now, 0), nil
end
local function take(e, id)
  local lapsed = lapse(e)
  e.f = (e.f or 0) + 1
  e.en = nil
  e.rq = nil
  e.ks = secret
  local expires = now + lease
  e.c = {k = secret, h = holder, e = expires, s = e.sq or 0}
  if integ ~= '' then e.c.i = integ end
  e.t = now
  save(id, e)
  return cjson.encode(view(e, id, e.f, secret, expires, 0, lapsed))
end
if want ~= '' then
  local e, known = load(want)
  if not known then return cjson.encode({k = 'not_waiting'}) end
  local ms, no = ready_in(e)
  if no then return cjson.encode(no) end
  if e.c and e.c.e > now then
    return cjson.encode({k = 'held', e = e.c.e, yours = e.c.h == holder})
  end
  return take(e, want)
end
local soonest = -1
for _, id in ipairs(redis.call('ZRANGE', q, 0, scan - 1)) do
  local e, known = load(id)
  if not known then
    redis.call('ZREM', q, id)
  else
    local ms = ready_in(e)
    if ms == 0 then return take(e, id) end
    if ms and (soonest < 0 or ms < soonest) then soonest = ms end
  end
end
return cjson.encode({k = 'nothing', r = soonest})
"
    ))
});

/// ARGV: prefix, max age, operation (`renew`, `check`, `peek` (a check that changes nothing),
/// `answered`, `kept`, `skipped`, `handed_over`), holder, conversation, fence, secret, lease
/// (ms). Answers JSON.
static TOKEN: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r"
local op, holder, id, fence, secret, lease = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local e, known = load(id)
local c, no = holding(e, holder, fence, secret)
if no then
  if known and no.fresh and op ~= 'peek' then save(id, e) end
  return cjson.encode(no)
end
local handed = c.s
local out = {k = 'ok'}
if op == 'renew' then
  c.s = e.sq or 0
  c.e = now + lease
  out = view(e, id, fence, secret, c.e, handed, false)
elseif op == 'check' or op == 'peek' then
  if (e.sq or 0) > handed then
    local arrived = {}
    for _, x in ipairs(e.p) do if x.s > handed then arrived[#arrived + 1] = x end end
    out = {k = 'superseded', p = arrived}
    if op == 'peek' then return cjson.encode(out) end
    c.s = e.sq
  elseif op == 'peek' then
    return cjson.encode(out)
  end
elseif op == 'answered' or op == 'kept' then
  local kept = {}
  for _, x in ipairs(e.p) do
    if x.s > handed then
      kept[#kept + 1] = x
    elseif out.w == nil or now - x.l < out.w then
      out.w = now - x.l
    end
  end
  e.p = kept
  if op == 'answered' then e.c = nil e.en = 'answered' end
elseif op == 'skipped' then
  e.c = nil
  e.rq = now + 1
  e.en = 'skipped'
else
  e.c = nil
  e.en = op
end
e.t = now
save(id, e)
return cjson.encode(out)
"
    ))
});

/// ARGV: prefix, max age, then conversation ids. Answers each claim's expiry (0 for none).
static HOLDS: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r"
local out = {}
for j = 3, #ARGV do
  local e = load(ARGV[j])
  if e.c and e.c.e > now then out[#out + 1] = e.c.e else out[#out + 1] = 0 end
end
return out
"
    ))
});

/// ARGV: prefix, max age, how many entries to read at most. Answers unclaimed, claimed, the
/// oldest wait (ms).
static STATS: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r"
local unclaimed, claimed, oldest = 0, 0, 0
for _, id in ipairs(redis.call('ZRANGE', q, 0, tonumber(ARGV[3]) - 1)) do
  local e, known = load(id)
  if known and #e.p > 0 then
    if e.c and e.c.e > now then claimed = claimed + 1 else unclaimed = unclaimed + 1 end
    oldest = math.max(oldest, now - e.p[1].l)
  end
end
return {unclaimed, claimed, oldest}
"
    ))
});

/// Entries the gauges read at most.
const STATS_READ: usize = 10_000;

/// [`ClaimStore`] shared by every replica through Redis.
#[derive(Debug)]
pub(crate) struct RedisClaims {
    redis: Redis,
    max_age: Duration,
    notices: RedisInvalidation,
}

impl RedisClaims {
    /// Subscribes to the app's work notices; entries are forgotten `max_age` after their last
    /// change.
    pub(crate) async fn new(redis: Redis, max_age: Duration) -> Result<Self, StoreError> {
        let notices = RedisInvalidation::on(redis.clone(), "work-arrived").await?;
        Ok(Self {
            redis,
            max_age,
            notices,
        })
    }

    fn invocation<'s>(&self, script: &'s Script) -> redis::ScriptInvocation<'s> {
        let mut s = script.key(self.redis.key("wq:queue"));
        s.arg(&*self.redis.prefix)
            .arg(self.max_age.as_millis() as u64);
        s
    }

    async fn token_op(
        &self,
        op: &str,
        holder: &str,
        token: &Token,
        lease: Duration,
    ) -> Result<Answer, StoreError> {
        let mut s = self.invocation(&TOKEN);
        s.arg(op)
            .arg(holder)
            .arg(&token.conversation_id)
            .arg(token.fence)
            .arg(&token.secret)
            .arg(lease.as_millis() as u64);
        let json: String = self.redis.run("claims.token", &s).await?;
        decode(&json)
    }
}

/// A script's answer.
#[derive(Debug, Deserialize)]
struct Answer {
    k: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    f: u64,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    e: i64,
    #[serde(default, deserialize_with = "pending_list")]
    p: Vec<Pending>,
    #[serde(default)]
    shown: u64,
    #[serde(default, rename = "as")]
    active: Option<String>,
    #[serde(default)]
    ch: Option<String>,
    #[serde(default)]
    lapsed: bool,
    #[serde(default)]
    now: i64,
    #[serde(default)]
    r: Option<i64>,
    #[serde(default)]
    yours: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    fresh: bool,
    /// How long the last message a release answered had waited (ms).
    #[serde(default)]
    w: Option<i64>,
}

fn pending_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Pending>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Array(_) => {
            serde_json::from_value(v).map_err(serde::de::Error::custom)?
        }
        _ => vec![],
    })
}

fn decode(json: &str) -> Result<Answer, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError(format!("a claims script answered what cannot be read: {e}")))
}

impl Answer {
    fn claimed(self) -> Claimed {
        Claimed {
            conversation_id: self.id,
            fence: self.f,
            secret: self.secret,
            expires: self.e,
            pending: self.p,
            shown_before: self.shown,
            active: self.active,
            channel: self.ch,
            lapsed: self.lapsed,
            now: self.now,
        }
    }

    /// The refusal this answer is, if it is one.
    fn refusal(&mut self) -> Option<Refusal> {
        Some(match self.k.as_str() {
            "unknown" => Refusal::Unknown,
            "not_yours" => Refusal::NotYours,
            "lost" => Refusal::Lost {
                reason: self.reason.take().unwrap_or_default(),
                lapsed_now: self.fresh,
            },
            "superseded" => Refusal::Superseded {
                arrived: std::mem::take(&mut self.p),
            },
            _ => return None,
        })
    }
}

impl ClaimStore for RedisClaims {
    fn note(&self, notes: Vec<WorkNote>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut s = self.invocation(&NOTE);
            for n in &notes {
                let (kind, a, b) = match &n.change {
                    WorkChange::UserMessage {
                        message_id,
                        channel,
                    } => ("u", message_id.clone(), channel.clone().unwrap_or_default()),
                    WorkChange::BusinessMessage { fence } => (
                        "b",
                        fence.map(|f| f.to_string()).unwrap_or_default(),
                        String::new(),
                    ),
                    WorkChange::Control { active } => {
                        ("k", active.clone().unwrap_or_default(), String::new())
                    }
                    WorkChange::Removed => ("r", String::new(), String::new()),
                };
                s.arg(&n.conversation_id).arg(n.at).arg(kind).arg(a).arg(b);
            }
            let woke: i64 = self.redis.run("claims.note", &s).await?;
            if woke == 1 {
                self.notices.publish().await?;
            }
            Ok(())
        })
    }

    fn claim<'a>(&'a self, ask: &'a ClaimAsk) -> BoxFuture<'a, Result<ClaimAnswer, StoreError>> {
        Box::pin(async move {
            let mut s = self.invocation(&CLAIM);
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            s.arg(&ask.holder)
                .arg(&ask.secret)
                .arg(text(&ask.conversation_id))
                .arg(text(&ask.integration))
                .arg(text(&ask.channel))
                .arg(text(&ask.active))
                .arg(ask.quiet.as_millis() as u64)
                .arg(ask.lease.as_millis() as u64)
                .arg(crate::shared::SCAN);
            let json: String = self.redis.run("claims.claim", &s).await?;
            let a = decode(&json)?;
            Ok(match a.k.as_str() {
                "claimed" => ClaimAnswer::Claimed(Box::new(a.claimed())),
                "held" => ClaimAnswer::Held {
                    expires: a.e,
                    yours: a.yours,
                },
                "not_waiting" => ClaimAnswer::NotWaiting,
                "not_in_control" => ClaimAnswer::NotInControl { active: a.active },
                _ => ClaimAnswer::Nothing {
                    ready_in: a
                        .r
                        .filter(|ms| *ms >= 0)
                        .map(|ms| Duration::from_millis(ms as u64)),
                },
            })
        })
    }

    fn renew<'a>(
        &'a self,
        holder: &'a str,
        token: &'a Token,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Result<Claimed, Refusal>, StoreError>> {
        Box::pin(async move {
            let mut a = self.token_op("renew", holder, token, lease).await?;
            Ok(match a.refusal() {
                Some(r) => Err(r),
                None => Ok(a.claimed()),
            })
        })
    }

    fn check<'a>(
        &'a self,
        holder: &'a str,
        token: &'a Token,
        peek: bool,
    ) -> BoxFuture<'a, Result<Result<(), Refusal>, StoreError>> {
        Box::pin(async move {
            let op = if peek { "peek" } else { "check" };
            let mut a = self.token_op(op, holder, token, Duration::ZERO).await?;
            Ok(a.refusal().map_or(Ok(()), Err))
        })
    }

    fn release<'a>(
        &'a self,
        holder: &'a str,
        token: &'a Token,
        how: Release,
    ) -> BoxFuture<'a, Result<Result<Option<i64>, Refusal>, StoreError>> {
        Box::pin(async move {
            let op = match how {
                Release::Answered { keep: true } => "kept",
                other => other.as_str(),
            };
            let mut a = self.token_op(op, holder, token, Duration::ZERO).await?;
            Ok(a.refusal().map_or(Ok(a.w), Err))
        })
    }

    fn holds<'a>(
        &'a self,
        conversation_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<i64>>, StoreError>> {
        Box::pin(async move {
            if conversation_ids.is_empty() {
                return Ok(vec![]);
            }
            let mut s = self.invocation(&HOLDS);
            for id in conversation_ids {
                s.arg(id);
            }
            let out: Vec<i64> = self.redis.run("claims.holds", &s).await?;
            Ok(out.into_iter().map(|x| (x > 0).then_some(x)).collect())
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, StoreError>> {
        Box::pin(async move {
            let mut s = self.invocation(&STATS);
            s.arg(STATS_READ);
            let v: (u64, u64, i64) = self.redis.run("claims.stats", &s).await?;
            Ok(QueueStats {
                unclaimed: v.0,
                claimed: v.1,
                oldest_wait_ms: v.2.max(0) as u64,
            })
        })
    }

    fn subscribe(&self) -> Subscription {
        self.notices.subscribe()
    }
}
