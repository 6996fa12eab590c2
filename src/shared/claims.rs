//! The inbound work queue: which conversations wait for a reply, and which caller holds each.
//!
//! Fed by the webhooks ([`WorkNote`]s: a user message arrived, a business message answered, the
//! control moved, the conversation was removed); read by `claim_conversation`, which hands a
//! conversation whose customer has gone quiet to exactly one caller at a time under a lease.
//! Every decision is one step of the store (one Redis script on Redis), timed on the store's
//! own clock (the Redis server's, or this process's in memory) from when the server learnt of a
//! message, never from times in payloads.
//!
//! A claim is fenced: each claim of a conversation takes the next number of the conversation's
//! counter, and a send under a claim checks, in the same step as the lease, that the number is
//! still the current one and that no user message arrived after those the claim handed out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{BoxFuture, MemoryInvalidation, StoreError, Subscription};
use crate::shared::Invalidation;
use crate::sunco::ids::now_unix_ms;

/// Unanswered user messages kept per conversation (the oldest are dropped past it; the wait is
/// still measured from the oldest ever kept).
pub(crate) const MAX_PENDING: usize = 50;
/// The metadata field of a message sent under a claim: the claim's fence.
pub(crate) const CLAIM_FIELD: &str = "mcp.claim";
/// User message ids remembered per conversation against a repeated webhook.
pub(crate) const RECENT: usize = 64;
/// Queue entries a claim without `conversationId` looks at, oldest wait first.
pub(crate) const SCAN: usize = 256;

/// What one webhook event tells the queue. `at` is the event's time (Unix ms), used only to
/// order notes about one conversation; waits are timed from when the store took the note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkNote {
    pub(crate) conversation_id: String,
    pub(crate) at: i64,
    pub(crate) change: WorkChange,
}

/// The change a [`WorkNote`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WorkChange {
    /// A user wrote `message_id` through `channel`.
    UserMessage {
        message_id: String,
        channel: Option<String>,
    },
    /// A business message answered what came before it. `fence` when it was sent under a
    /// claim (the claim's completion already settled what it answered).
    BusinessMessage { fence: Option<u64> },
    /// The active switchboard integration is now `active` (`None` for none).
    Control { active: Option<String> },
    /// `conversation:remove`.
    Removed,
}

/// A user message waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Pending {
    #[serde(rename = "id")]
    pub(crate) message_id: String,
    /// When the store learnt of it (its clock, Unix ms).
    #[serde(rename = "l")]
    pub(crate) learnt: i64,
    /// The event's time, for ordering.
    #[serde(rename = "a")]
    pub(crate) at: i64,
    /// Its place among the conversation's user messages (1, 2, …).
    #[serde(rename = "s")]
    pub(crate) seq: u64,
}

/// A claim being held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    /// The unguessable part of the token.
    pub(crate) secret: String,
    /// Who holds it ([`crate::call::Caller::holder`]).
    pub(crate) holder: String,
    pub(crate) expires: i64,
    /// The last user message the holder was shown.
    pub(crate) handed: u64,
    /// The switchboard integration the claim was taken for: control moving elsewhere drops it.
    pub(crate) integration: Option<String>,
}

/// What the queue knows of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WorkEntry {
    pub(crate) active: Option<String>,
    pub(crate) control_at: i64,
    pub(crate) channel: Option<String>,
    /// Unanswered user messages, oldest first.
    pub(crate) pending: Vec<Pending>,
    /// The last user message's `seq`.
    pub(crate) seq: u64,
    /// The latest user messages' ids (at most [`RECENT`]): a webhook delivered again is not
    /// a new message.
    pub(crate) recent: Vec<String>,
    /// The time of the latest business message not sent under a claim.
    pub(crate) business_at: i64,
    /// When a skipped claim put it back (it waits behind what waited before).
    pub(crate) requeued: Option<i64>,
    /// The fencing counter: the number of the latest claim.
    pub(crate) fence: u64,
    pub(crate) claim: Option<Held>,
    /// Why the claim numbered `fence` ended, once it has.
    pub(crate) ended: Option<String>,
    /// Its last change, for forgetting.
    pub(crate) touched: i64,
}

/// What a claim asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimAsk {
    pub(crate) holder: String,
    /// The unguessable part of the token to hand out.
    pub(crate) secret: String,
    /// That conversation only.
    pub(crate) conversation_id: Option<String>,
    /// The caller's switchboard integration (the send guard's): only where it is in control.
    pub(crate) integration: Option<String>,
    /// The `channel` filter.
    pub(crate) channel: Option<String>,
    /// The `activeSwitchboardIntegration` filter (an id).
    pub(crate) active: Option<String>,
    pub(crate) quiet: Duration,
    pub(crate) lease: Duration,
}

/// A claim handed out or renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claimed {
    pub(crate) conversation_id: String,
    pub(crate) fence: u64,
    pub(crate) secret: String,
    pub(crate) expires: i64,
    /// Every unanswered user message, oldest first.
    pub(crate) pending: Vec<Pending>,
    /// The `seq` the holder had been shown before (0 for a new claim): later ones are new.
    pub(crate) shown_before: u64,
    pub(crate) active: Option<String>,
    pub(crate) channel: Option<String>,
    /// The claim replaced one that had lapsed.
    pub(crate) lapsed: bool,
    /// The store's clock now.
    pub(crate) now: i64,
}

/// What a claim got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaimAnswer {
    Claimed(Box<Claimed>),
    /// Nothing is ready; `ready_in`: when something known will be (a quiet period ending, a
    /// lease lapsing), if anything.
    Nothing {
        ready_in: Option<Duration>,
    },
    /// The conversation asked for is held by another caller (or by this one under another
    /// token) until `expires`.
    Held {
        expires: i64,
        yours: bool,
    },
    /// The conversation asked for has no unanswered user message.
    NotWaiting,
    /// The conversation asked for is controlled by another switchboard integration.
    NotInControl {
        active: Option<String>,
    },
}

/// Why a token no longer works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The token names no claim this server handed out.
    Unknown,
    /// Another caller's claim.
    NotYours,
    /// The claim ended: `lapsed`, `answered`, `skipped`, `handed_over`, `taken` (lapsed and
    /// claimed by another), `removed` (the conversation was deleted). `lapsed_now`: this step found it lapsed (counted once).
    Lost { reason: String, lapsed_now: bool },
    /// User messages arrived after the ones the claim handed out (now handed out with this).
    Superseded { arrived: Vec<Pending> },
}

/// How a claim ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// Answered: what the claim handed out is answered; with `keep`, the claim stays.
    Answered { keep: bool },
    /// Back in the queue at once, behind what waits already.
    Skipped,
    /// Given to another switchboard integration.
    HandedOver,
}

impl Release {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Release::Answered { .. } => "answered",
            Release::Skipped => "skipped",
            Release::HandedOver => "handed_over",
        }
    }
}

/// A claim's token, as the caller sends it back: the conversation, the fence, the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) conversation_id: String,
    pub(crate) fence: u64,
    pub(crate) secret: String,
}

impl Token {
    const PREFIX: &'static str = "clm.";

    pub(crate) fn of(claimed: &Claimed) -> Self {
        Self {
            conversation_id: claimed.conversation_id.clone(),
            fence: claimed.fence,
            secret: claimed.secret.clone(),
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix(Self::PREFIX)?.split('.');
        let (c, f, s) = (parts.next()?, parts.next()?, parts.next()?);
        let shaped = parts.next().is_none()
            && crate::sunco::ids::is_resource_id(c)
            && s.len() == 32
            && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !shaped {
            return None;
        }
        Some(Self {
            conversation_id: c.to_owned(),
            fence: f.parse().ok()?,
            secret: s.to_owned(),
        })
    }

    pub(crate) fn new_secret() -> String {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}.{}.{}",
            Self::PREFIX,
            self.conversation_id,
            self.fence,
            self.secret
        )
    }
}

/// The queue now, for the gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueueStats {
    pub(crate) unclaimed: u64,
    pub(crate) claimed: u64,
    /// The longest a customer waits now (ms), 0 when nobody does.
    pub(crate) oldest_wait_ms: u64,
}

/// The inbound work queue shared by every replica.
///
/// Invariants: a conversation waits from when its first unanswered user message was learnt
/// until a business message answers it (a message sent under a claim answers, through the
/// claim's completion, only what the claim handed out); it is handed out once its customer
/// has been quiet for the asked period, to one holder at a time, oldest wait first (a skipped
/// one waits from its skip); a lapsed claim is free for another and its token refused from
/// then on; a send check passes only for the current claim's holder with nothing newer than
/// what it was shown; control moving away from a claim's integration drops the claim.
pub(crate) trait ClaimStore: Send + Sync + std::fmt::Debug {
    /// Takes the webhooks' notes and tells waiters work may have arrived.
    fn note(&self, notes: Vec<WorkNote>) -> BoxFuture<'_, Result<(), StoreError>>;
    fn claim<'a>(&'a self, ask: &'a ClaimAsk) -> BoxFuture<'a, Result<ClaimAnswer, StoreError>>;
    /// Renews the holder's claim for `lease` and shows what is unanswered now.
    fn renew<'a>(
        &'a self,
        holder: &'a str,
        token: &'a Token,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Result<Claimed, Refusal>, StoreError>>;
    /// Whether a send under the claim may go now (see the invariants). A superseded check
    /// counts the newer messages as shown, unless `peek` (a dry run: nothing changes).
    fn check<'a>(
        &'a self,
        holder: &'a str,
        token: &'a Token,
        peek: bool,
    ) -> BoxFuture<'a, Result<Result<(), Refusal>, StoreError>>;
    /// Ends (or, answered with `keep`, keeps) the claim. Answered: how long (ms) the last
    /// message it answered had waited.
    fn release<'a>(
        &'a self,
        holder: &'a str,
        token: &'a Token,
        how: Release,
    ) -> BoxFuture<'a, Result<Result<Option<i64>, Refusal>, StoreError>>;
    /// When each conversation's claim expires, if one is held.
    fn holds<'a>(
        &'a self,
        conversation_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<i64>>, StoreError>>;
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, StoreError>>;
    /// "Work may have arrived", from every replica's notes.
    fn subscribe(&self) -> Subscription;
}

/// The decisions, once, on one entry: the in-memory store runs them and the Redis script
/// mirrors them.
pub(crate) mod decide {
    use super::*;

    /// Merges one note taken at `now`. Returns whether work may have arrived.
    pub(crate) fn note(e: &mut WorkEntry, note: &WorkNote, now: i64) -> bool {
        e.touched = now;
        match &note.change {
            WorkChange::UserMessage {
                message_id,
                channel,
            } => {
                if note.at < e.business_at || e.recent.contains(message_id) {
                    return false;
                }
                e.recent.push(message_id.clone());
                if e.recent.len() > RECENT {
                    e.recent.remove(0);
                }
                e.seq += 1;
                if channel.is_some() {
                    e.channel.clone_from(channel);
                }
                let p = Pending {
                    message_id: message_id.clone(),
                    learnt: now,
                    at: note.at,
                    seq: e.seq,
                };
                let place = e.pending.partition_point(|q| q.at <= note.at);
                e.pending.insert(place, p);
                if e.pending.len() > MAX_PENDING {
                    let oldest = e.pending[0].learnt;
                    e.pending.remove(0);
                    e.pending[0].learnt = e.pending[0].learnt.min(oldest);
                }
                true
            }
            WorkChange::BusinessMessage { fence: Some(_) } => false,
            WorkChange::BusinessMessage { fence: None } => {
                e.business_at = e.business_at.max(note.at);
                let at = e.business_at;
                e.pending.retain(|p| p.at > at);
                false
            }
            WorkChange::Control { active } => {
                if note.at < e.control_at {
                    return false;
                }
                e.control_at = note.at;
                e.active.clone_from(active);
                if let Some(c) = &e.claim
                    && c.integration.is_some()
                    && c.integration != *active
                {
                    e.claim = None;
                    e.ended = Some("handed_over".into());
                }
                true
            }
            WorkChange::Removed => {
                *e = WorkEntry {
                    fence: e.fence,
                    ended: e.claim.is_some().then(|| "removed".to_owned()),
                    recent: std::mem::take(&mut e.recent),
                    touched: now,
                    ..WorkEntry::default()
                };
                false
            }
        }
    }

    /// Where it stands in the queue (smaller first), when it waits.
    pub(crate) fn order(e: &WorkEntry) -> Option<i64> {
        let first = e.pending.first()?.learnt;
        Some(e.requeued.map_or(first, |r| r.max(first)))
    }

    /// Drops a lapsed claim; returns whether it did.
    pub(crate) fn lapse(e: &mut WorkEntry, now: i64) -> bool {
        if e.claim.as_ref().is_some_and(|c| c.expires <= now) {
            e.claim = None;
            e.ended = Some("lapsed".into());
            return true;
        }
        false
    }

    /// When the entry could be handed out (`Ok(ms from now)`, 0 for now), or why it cannot.
    pub(crate) fn ready_in(e: &WorkEntry, ask: &ClaimAsk, now: i64) -> Result<i64, ClaimAnswer> {
        if e.pending.is_empty() {
            return Err(ClaimAnswer::NotWaiting);
        }
        let fits = |want: &Option<String>, have: &Option<String>| {
            want.is_none() || have.is_none() || want == have
        };
        if !fits(&ask.integration, &e.active) {
            return Err(ClaimAnswer::NotInControl {
                active: e.active.clone(),
            });
        }
        if ask.active.is_some() && ask.active != e.active
            || ask.channel.is_some() && ask.channel != e.channel
        {
            return Err(ClaimAnswer::Nothing { ready_in: None });
        }
        let quiet_from = e.pending.iter().map(|p| p.learnt).max().unwrap_or(now);
        let quiet_until = quiet_from + ask.quiet.as_millis() as i64;
        let free_at = e.claim.as_ref().map_or(now, |c| c.expires);
        Ok((quiet_until.max(free_at) - now).max(0))
    }

    /// Hands the entry to `ask` (it was found ready).
    pub(crate) fn take(e: &mut WorkEntry, id: &str, ask: &ClaimAsk, now: i64) -> Claimed {
        let lapsed = lapse(e, now);
        e.fence += 1;
        e.ended = None;
        e.requeued = None;
        let expires = now + ask.lease.as_millis() as i64;
        e.claim = Some(Held {
            secret: ask.secret.clone(),
            holder: ask.holder.clone(),
            expires,
            handed: e.seq,
            integration: ask.integration.clone(),
        });
        e.touched = now;
        Claimed {
            conversation_id: id.to_owned(),
            fence: e.fence,
            secret: ask.secret.clone(),
            expires,
            pending: e.pending.clone(),
            shown_before: 0,
            active: e.active.clone(),
            channel: e.channel.clone(),
            lapsed,
            now,
        }
    }

    /// The holder's live claim, or why not.
    pub(crate) fn holding<'e>(
        e: &'e mut WorkEntry,
        holder: &str,
        token: &Token,
        now: i64,
    ) -> Result<&'e mut Held, Refusal> {
        if token.fence > e.fence || token.fence == 0 {
            return Err(Refusal::Unknown);
        }
        if token.fence < e.fence {
            return Err(Refusal::Lost {
                reason: "taken".into(),
                lapsed_now: false,
            });
        }
        let lapsed_now = lapse(e, now);
        let ended = e.ended.clone();
        match &mut e.claim {
            Some(c) if c.secret != token.secret => Err(Refusal::Unknown),
            Some(c) if c.holder != holder => Err(Refusal::NotYours),
            Some(c) => Ok(c),
            None => Err(Refusal::Lost {
                reason: ended.unwrap_or_else(|| "released".into()),
                lapsed_now,
            }),
        }
    }

    /// Renews the claim for `lease` and shows what is unanswered.
    pub(crate) fn renew(
        e: &mut WorkEntry,
        holder: &str,
        token: &Token,
        lease: Duration,
        now: i64,
    ) -> Result<Claimed, Refusal> {
        let seq = e.seq;
        let c = holding(e, holder, token, now)?;
        let shown_before = c.handed;
        c.handed = seq;
        c.expires = now + lease.as_millis() as i64;
        let expires = c.expires;
        e.touched = now;
        Ok(Claimed {
            conversation_id: token.conversation_id.clone(),
            fence: token.fence,
            secret: token.secret.clone(),
            expires,
            pending: e.pending.clone(),
            shown_before,
            active: e.active.clone(),
            channel: e.channel.clone(),
            lapsed: false,
            now,
        })
    }

    /// A send's check.
    pub(crate) fn check(
        e: &mut WorkEntry,
        holder: &str,
        token: &Token,
        now: i64,
        peek: bool,
    ) -> Result<(), Refusal> {
        let seq = e.seq;
        let c = holding(e, holder, token, now)?;
        if seq > c.handed {
            let shown = c.handed;
            if !peek {
                c.handed = seq;
            }
            return Err(Refusal::Superseded {
                arrived: e
                    .pending
                    .iter()
                    .filter(|p| p.seq > shown)
                    .cloned()
                    .collect(),
            });
        }
        Ok(())
    }

    pub(crate) fn release(
        e: &mut WorkEntry,
        holder: &str,
        token: &Token,
        how: Release,
        now: i64,
    ) -> Result<Option<i64>, Refusal> {
        let c = holding(e, holder, token, now)?;
        let handed = c.handed;
        e.touched = now;
        let mut waited = None;
        match how {
            Release::Answered { keep } => {
                waited = e
                    .pending
                    .iter()
                    .filter(|p| p.seq <= handed)
                    .map(|p| now - p.learnt)
                    .min();
                e.pending.retain(|p| p.seq > handed);
                if !keep {
                    e.claim = None;
                    e.ended = Some(how.as_str().into());
                }
            }
            Release::Skipped => {
                e.claim = None;
                // Behind everything learnt up to now, ties included.
                e.requeued = Some(now + 1);
                e.ended = Some(how.as_str().into());
            }
            Release::HandedOver => {
                e.claim = None;
                e.ended = Some(how.as_str().into());
            }
        }
        Ok(waited)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, at: i64) -> WorkNote {
        WorkNote {
            conversation_id: "c".into(),
            at,
            change: WorkChange::UserMessage {
                message_id: id.into(),
                channel: None,
            },
        }
    }

    fn ask(quiet_ms: u64) -> ClaimAsk {
        ClaimAsk {
            holder: "h".into(),
            secret: "s".into(),
            quiet: Duration::from_millis(quiet_ms),
            lease: Duration::from_secs(60),
            ..ClaimAsk::default()
        }
    }

    #[test]
    fn the_quiet_period_runs_from_the_last_message_learnt() {
        let mut e = WorkEntry::default();
        decide::note(&mut e, &user("m1", 10), 1_000);
        decide::note(&mut e, &user("m2", 20), 2_500);
        assert_eq!(decide::ready_in(&e, &ask(2_000), 3_000), Ok(1_500));
        assert_eq!(decide::ready_in(&e, &ask(2_000), 4_500), Ok(0));
        // The wait is from the first message.
        assert_eq!(decide::order(&e), Some(1_000));
    }

    #[test]
    fn notes_out_of_order_keep_the_newest_word() {
        let mut e = WorkEntry::default();
        // The answer's event arrives before the question it answered.
        let answer = WorkNote {
            conversation_id: "c".into(),
            at: 50,
            change: WorkChange::BusinessMessage { fence: None },
        };
        decide::note(&mut e, &answer, 1_000);
        assert!(!decide::note(&mut e, &user("m1", 40), 1_001));
        assert!(e.pending.is_empty(), "answered already");
        decide::note(&mut e, &user("m2", 60), 1_002);
        decide::note(&mut e, &user("m0", 55), 1_003);
        let ids: Vec<&str> = e.pending.iter().map(|p| p.message_id.as_str()).collect();
        assert_eq!(
            ids,
            ["m0", "m2"],
            "ordered by their time, not their arrival"
        );
    }

    #[test]
    fn a_long_burst_keeps_its_newest_messages_and_its_first_wait() {
        let mut e = WorkEntry::default();
        for n in 0..(MAX_PENDING as i64 + 5) {
            decide::note(&mut e, &user(&format!("m{n}"), n), 1_000 + n);
        }
        assert_eq!(e.pending.len(), MAX_PENDING);
        assert_eq!(e.pending[0].message_id, "m5");
        assert_eq!(
            decide::order(&e),
            Some(1_000),
            "the customer waits since the first"
        );
    }

    #[test]
    fn a_claims_fence_outlives_a_removal() {
        let mut e = WorkEntry::default();
        decide::note(&mut e, &user("m1", 1), 1);
        let claimed = decide::take(&mut e, "c", &ask(0), 10);
        let removed = WorkNote {
            conversation_id: "c".into(),
            at: 20,
            change: WorkChange::Removed,
        };
        decide::note(&mut e, &removed, 20);
        let token = Token::of(&claimed);
        assert!(matches!(
            decide::check(&mut e, "h", &token, 30, false),
            Err(Refusal::Lost { ref reason, .. }) if reason == "removed"
        ));
        decide::note(&mut e, &user("m2", 40), 40);
        assert!(decide::take(&mut e, "c", &ask(0), 50).fence > claimed.fence);
    }
}
