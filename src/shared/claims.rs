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

use std::time::Duration;

use super::{BoxFuture, StoreError, Subscription};

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
    /// The secret of the claim numbered `fence`: a token for it is checked against it also
    /// after the claim ended.
    pub(crate) last_secret: String,
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

pub(crate) mod decide;
mod memory;

pub(crate) use memory::MemoryClaims;
