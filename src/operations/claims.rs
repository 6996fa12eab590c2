//! The fleet's work loop: claiming a conversation that waits for a reply, renewing and
//! releasing the claim, and the check a send under a claim (or `inReplyTo`) passes first.
//!
//! The decisions are the [`ClaimStore`](crate::shared::ClaimStore)'s (one atomic step each, on
//! the store's clock); this module waits for work, reads the messages a claim hands out, and
//! turns the store's refusals into the errors an agent acts on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Operations;

mod activities;
mod waiting;

use crate::call::{Call, Mode};
use crate::error::CallError;
use crate::shared::{
    ClaimAnswer, ClaimAsk, ClaimStore, Claimed, Heard, Pending, Refusal, Release, StoreError, Token,
};
use crate::sunco::endpoints::Endpoint;
use crate::sunco::paging::Page;
use crate::sunco::wire::{AuthorType, MessageListResponse};
use crate::telemetry::{InProgress, Metrics, kv};
use waiting::Wait;
pub(crate) use waiting::{Lookups, watch_queue};

/// Unanswered messages an answer shows at most (the newest; the rest are counted).
pub(crate) const MAX_SHOWN: usize = 20;
/// How often a waiter looks again without a notice (one may be lost).
const RECHECK: Duration = Duration::from_secs(5);
/// How often a waiter with a progress token reports that it still waits.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How often the queue gauges are read.
const GAUGES_EVERY: Duration = Duration::from_secs(5);

/// What `claim_conversation` asks.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimRequest {
    pub(crate) conversation_id: Option<String>,
    /// A claim to renew (its token as given).
    pub(crate) renew: Option<String>,
    pub(crate) channel: Option<String>,
    /// The `activeSwitchboardIntegration` filter (id, name or integrationType).
    pub(crate) active: Option<String>,
    pub(crate) wait: Duration,
    pub(crate) quiet: Duration,
    pub(crate) lease: Duration,
    /// Activities to post once claimed ([`ACTIVITIES`]): mark read, start typing.
    pub(crate) activities: Vec<&'static str>,
}

/// Why no claim came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoClaim {
    /// Nothing was ready within the wait.
    NothingReady,
    /// The conversation asked for is another caller's until `held_until`.
    Held,
    /// The conversation asked for has no unanswered user message.
    NotWaiting,
    /// The server is shutting down; another replica answers.
    ShuttingDown,
}

impl NoClaim {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NoClaim::NothingReady => "nothing_ready",
            NoClaim::Held => "held",
            NoClaim::NotWaiting => "not_waiting",
            NoClaim::ShuttingDown => "shutting_down",
        }
    }
}

/// What `claim_conversation` answers.
#[derive(Debug, Clone)]
pub(crate) enum ClaimResult {
    Claimed {
        claimed: Box<Claimed>,
        /// The unanswered messages shown (the newest [`MAX_SHOWN`]), oldest first.
        messages: Vec<Value>,
        /// Unanswered messages not shown.
        omitted: usize,
        /// How many of them the holder had not been shown before (a renewal).
        new: usize,
        /// Each activity asked for, and `sent`, `dry_run` or why it failed.
        activities: Vec<(String, String)>,
    },
    None {
        why: NoClaim,
        retry_after: Duration,
        /// Another caller's claim ends then (Unix ms).
        held_until: Option<i64>,
    },
}

/// How a business message answers.
#[derive(Debug, Clone, Default)]
pub enum Answering {
    /// Not said.
    #[default]
    Unsaid,
    /// Under a claim (its token as given); `keep` keeps it after the send.
    Claim { token: String, keep: bool },
    /// In reply to this message: refused when a user message came after it.
    InReplyTo(String),
}

/// The store is down: fail closed.
fn unavailable(e: StoreError) -> CallError {
    CallError::Unavailable {
        component: "the claims",
        reason: format!("{e}; no claim was handed out or changed, and nothing was sent"),
    }
}

/// A token as given, read.
fn token_of(text: &str) -> Result<Token, CallError> {
    Token::parse(text.trim()).ok_or_else(|| {
        CallError::invalid(
            "claim",
            "is not a claim token this server hands out (clm.…): pass the claim.token of a claim_conversation answer as given",
        )
    })
}

/// A store's refusal as the error the caller reads.
fn refused(token: &Token, refusal: Refusal, metrics: &Metrics) -> CallError {
    let conversation_id = token.conversation_id.clone();
    match refusal {
        Refusal::Unknown => CallError::invalid(
            "claim",
            "names no claim this server handed out; claim the conversation with claim_conversation",
        ),
        Refusal::NotYours => CallError::invalid(
            "claim",
            "is another caller's claim: a claim works only for the caller it was handed to",
        ),
        Refusal::Lost { reason, lapsed_now } => {
            if lapsed_now {
                metrics.claims.add(1, &[kv("outcome", "lapsed")]);
            }
            CallError::ClaimLost {
                conversation_id,
                reason,
            }
        }
        Refusal::Superseded { arrived } => CallError::Superseded {
            conversation_id,
            arrived: arrived.iter().map(pending_stub).collect(),
            claimed: true,
        },
    }
}

/// A pending message without its content: its id and when the server learnt of it.
fn pending_stub(p: &Pending) -> Value {
    serde_json::json!({
        "id": p.message_id,
        "receivedAt": crate::sunco::ids::from_unix_ms(p.learnt).map(crate::sunco::ids::format_timestamp),
    })
}

impl Operations {
    fn claims(&self) -> &Arc<dyn ClaimStore> {
        &self.actors.stores.claims
    }

    /// Hands `call` a conversation that waits for a reply (or renews its claim), waiting up to
    /// `req.wait` for one. `on_wait(waited)` runs every [`PROGRESS_EVERY`] of waiting.
    pub(crate) async fn claim<F, Fut>(
        &self,
        call: &Call,
        req: ClaimRequest,
        mut on_wait: F,
    ) -> Result<ClaimResult, CallError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let holder = call.caller().holder();
        if let Some(text) = &req.renew {
            let token = token_of(text)?;
            let renewed = self
                .claims()
                .renew(&holder, &token, req.lease)
                .await
                .map_err(unavailable)?
                .map_err(|r| refused(&token, r, &self.actors.metrics))?;
            return self.shown(call, renewed, &req.activities).await;
        }
        let ask = self.ask(call, &req, holder).await?;
        let now = tokio::time::Instant::now();
        let mut wait = Wait {
            // Subscribed before the first look: a notice after it is not missed.
            notices: self.claims().subscribe(),
            started: now,
            deadline: now + req.wait,
            next_progress: now + PROGRESS_EVERY,
            counted: None,
        };
        let group = self.lookups.group(&ask);
        let mut woke_at = group.looked();
        loop {
            let looked = group.look(woke_at, || self.claims().claim(&ask)).await;
            let (why, ready_in, held_until) = match looked.map_err(unavailable)? {
                // Another waiter here looked after this one woke and found nothing ready.
                None => (NoClaim::NothingReady, group.ready_in(), None),
                Some(ClaimAnswer::Claimed(c)) => {
                    let m = &self.actors.metrics;
                    m.claims.add(1, &[kv("outcome", "claimed")]);
                    if c.lapsed {
                        m.claims.add(1, &[kv("outcome", "lapsed")]);
                    }
                    return self.shown(call, *c, &req.activities).await;
                }
                Some(ClaimAnswer::NotInControl { active }) => {
                    return Err(self.not_mine(&ask, active).await);
                }
                Some(ClaimAnswer::Nothing { ready_in }) => (NoClaim::NothingReady, ready_in, None),
                Some(ClaimAnswer::NotWaiting) => (NoClaim::NotWaiting, None, None),
                Some(ClaimAnswer::Held { expires, .. }) => {
                    let left = expires - crate::sunco::ids::now_unix_ms();
                    let left = Duration::from_millis(left.max(0) as u64);
                    (NoClaim::Held, Some(left), Some(expires))
                }
            };
            if tokio::time::Instant::now() >= wait.deadline || self.stopping.is_cancelled() {
                return Ok(self.no_claim(why, ready_in, held_until));
            }
            self.wait_for_work(call, &mut wait, ready_in, &mut on_wait)
                .await?;
            woke_at = group.looked();
        }
    }

    /// No claim: why, and when to call again (at once when the server is stopping: another
    /// replica answers).
    fn no_claim(
        &self,
        why: NoClaim,
        ready_in: Option<Duration>,
        held_until: Option<i64>,
    ) -> ClaimResult {
        let stopping = self.stopping.is_cancelled();
        ClaimResult::None {
            why: if stopping { NoClaim::ShuttingDown } else { why },
            // Nothing known to come: a second, so a client polling without waitSeconds does
            // not spin (one that waits here is woken by work anyway).
            retry_after: if stopping {
                Duration::from_secs(1)
            } else {
                ready_in.unwrap_or(Duration::from_secs(1))
            },
            held_until,
        }
    }

    /// Waits for a notice, the readiness the store reported, the periodic look, the deadline or
    /// shutdown; the first wait gives the call's `/mcp` turn back and counts the waiter. An
    /// error when the client cancelled.
    async fn wait_for_work<F, Fut>(
        &self,
        call: &Call,
        wait: &mut Wait,
        ready_in: Option<Duration>,
        on_wait: &mut F,
    ) -> Result<(), CallError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        // A wait is not work: the turn goes back, and the waiter is counted.
        if wait.counted.is_none() {
            call.give_back_turn();
            wait.counted = Some(InProgress::count(&self.actors.metrics.claim_waiters));
        }
        let now = tokio::time::Instant::now();
        let until = wait
            .deadline
            .min(now + RECHECK)
            .min(now + ready_in.unwrap_or(RECHECK))
            .min(wait.next_progress);
        tokio::select! {
            heard = wait.notices.next() => {
                if heard == Heard::Closed {
                    // No notices any more: the periodic look still finds work.
                    wait.notices = self.claims().subscribe();
                }
            }
            () = tokio::time::sleep_until(until) => {}
            () = call.cancelled() => {
                return Err(CallError::Cancelled { operation: "claim_conversation" });
            }
            () = self.stopping.cancelled() => {}
        }
        if tokio::time::Instant::now() >= wait.next_progress {
            on_wait(wait.started.elapsed()).await;
            wait.next_progress += PROGRESS_EVERY;
        }
        Ok(())
    }

    /// What the store is asked, with the caller's switchboard integration (the send guard's)
    /// and the filter resolved to ids.
    async fn ask(
        &self,
        call: &Call,
        req: &ClaimRequest,
        holder: String,
    ) -> Result<ClaimAsk, CallError> {
        let integration = match self.speaks_for(call).await? {
            Some(mine) => Some(self.my_integration_id(&mine).await?.1),
            None => None,
        };
        let active = match &req.active {
            Some(a) => Some(self.filter_integration_id(a).await?),
            None => None,
        };
        Ok(ClaimAsk {
            holder,
            secret: Token::new_secret(),
            conversation_id: req.conversation_id.clone(),
            integration,
            channel: req.channel.clone(),
            active,
            quiet: req.quiet,
            lease: req.lease,
        })
    }

    /// The id of the switchboard integration the `activeSwitchboardIntegration` filter names
    /// (id, name or integrationType).
    async fn filter_integration_id(&self, named: &str) -> Result<String, CallError> {
        let (_, id) = self
            .on_fresh_picture(|p| p.resolve(named, None).map(|s| s.id.clone()))
            .await?;
        id.map_err(|why| {
            CallError::invalid(
                "activeSwitchboardIntegration",
                format!("{why}; name one of the switchboard's integrations by id, name or integrationType"),
            )
        })
    }

    /// A conversation asked for by name that another integration controls.
    async fn not_mine(&self, ask: &ClaimAsk, active: Option<String>) -> CallError {
        let picture = self.actors.switchboard.picture(false).await.ok();
        let info = |id: &str| {
            let s = picture.as_ref().and_then(|p| p.by_id(id));
            crate::error::TargetInfo {
                id: id.to_owned(),
                name: s.map_or_else(|| id.to_owned(), |s| s.name.clone()),
                integration_type: s
                    .map_or_else(|| "unknown".into(), |s| s.integration_type.clone()),
            }
        };
        let caller = ask
            .integration
            .as_deref()
            .map(|id| info(id).name)
            .unwrap_or_default();
        CallError::NotInControl {
            conversation_id: ask.conversation_id.clone().unwrap_or_default(),
            caller,
            active: active.as_deref().map(info),
        }
    }

    /// A claim with its unanswered messages read (the newest [`MAX_SHOWN`]).
    async fn shown(
        &self,
        call: &Call,
        claimed: Claimed,
        activities: &[&str],
    ) -> Result<ClaimResult, CallError> {
        let omitted = claimed.pending.len().saturating_sub(MAX_SHOWN);
        let new = claimed
            .pending
            .iter()
            .filter(|p| p.seq > claimed.shown_before)
            .count();
        let messages = self.messages_of(&claimed.pending[omitted..]).await;
        let activities = self
            .claim_activities(call, &claimed.conversation_id, activities)
            .await;
        Ok(ClaimResult::Claimed {
            claimed: Box::new(claimed),
            messages,
            omitted,
            new,
            activities,
        })
    }

    /// The messages as the webhooks showed them (an id and when it arrived, for one the
    /// record no longer holds).
    async fn messages_of(&self, pending: &[Pending]) -> Vec<Value> {
        let mut messages = Vec::with_capacity(pending.len());
        for p in pending {
            let seen = self.actors.tracker.seen(&p.message_id).await.ok().flatten();
            messages.push(seen.map_or_else(|| pending_stub(p), |s| s.message));
        }
        messages
    }

    /// Ends the caller's claim: answered, skipped (back in the queue) or handed over. A dry
    /// run checks the claim and changes nothing. Answers the conversation's id.
    pub(crate) async fn release_claim(
        &self,
        call: &Call,
        token: &str,
        how: Release,
    ) -> Result<String, CallError> {
        let token = token_of(token)?;
        let holder = call.caller().holder();
        let refused = |r| refused(&token, r, &self.actors.metrics);
        if call.mode() == Mode::DryRun {
            match self.claims().check(&holder, &token, true).await {
                Ok(Ok(()) | Err(Refusal::Superseded { .. })) => {}
                Ok(Err(r)) => return Err(refused(r)),
                Err(e) => return Err(unavailable(e)),
            }
            return Ok(token.conversation_id);
        }
        let waited = self
            .claims()
            .release(&holder, &token, how)
            .await
            .map_err(unavailable)?
            .map_err(refused)?;
        self.count_release(how, waited);
        Ok(token.conversation_id.clone())
    }

    fn count_release(&self, how: Release, waited_ms: Option<i64>) {
        let m = &self.actors.metrics;
        m.claims.add(1, &[kv("outcome", how.as_str())]);
        if let Some(ms) = waited_ms {
            m.answer_delay.record(ms.max(0) as f64 / 1000.0, &[]);
        }
    }

    /// The check a business message passes right before it is written, and what its metadata
    /// carries: under a claim, the claim is the caller's with nothing newer than it was shown
    /// (a dry run checks without changing anything); with `inReplyTo`, no user message came
    /// after that one.
    pub(crate) async fn check_answer(
        &self,
        call: &Call,
        conversation_id: &str,
        answering: &Answering,
    ) -> Result<(), CallError> {
        match answering {
            Answering::Unsaid => Ok(()),
            Answering::Claim { token, .. } => {
                let token = self.token_for(token, conversation_id)?;
                let holder = call.caller().holder();
                let peek = call.mode() == Mode::DryRun;
                match self.claims().check(&holder, &token, peek).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(Refusal::Superseded { arrived })) => {
                        let m = &self.actors.metrics;
                        m.claims.add(1, &[kv("outcome", "superseded")]);
                        let shown = &arrived[arrived.len().saturating_sub(MAX_SHOWN)..];
                        Err(CallError::Superseded {
                            conversation_id: conversation_id.to_owned(),
                            arrived: self.messages_of(shown).await,
                            claimed: true,
                        })
                    }
                    Ok(Err(r)) => Err(refused(&token, r, &self.actors.metrics)),
                    Err(e) => Err(unavailable(e)),
                }
            }
            Answering::InReplyTo(message_id) => {
                self.check_reply(call, conversation_id, message_id).await
            }
        }
    }

    /// A claim token for a send into `conversation_id`.
    pub(crate) fn token_for(&self, text: &str, conversation_id: &str) -> Result<Token, CallError> {
        let token = token_of(text)?;
        if token.conversation_id != conversation_id {
            return Err(CallError::invalid(
                "claim",
                format!(
                    "is a claim on conversation {}, not {conversation_id}: send into the claimed conversation",
                    token.conversation_id
                ),
            ));
        }
        Ok(token)
    }

    /// After a send under a claim: what it handed out is answered; the claim ends unless kept.
    pub(crate) async fn answered(&self, call: &Call, token: &str, keep: bool) {
        let Ok(token) = token_of(token) else {
            return;
        };
        let holder = call.caller().holder();
        let how = Release::Answered { keep };
        match self.claims().release(&holder, &token, how).await {
            Ok(Ok(waited)) => self.count_release(how, waited),
            // The message went out; the claim's record did not follow (the holder's next
            // renewal or the lease settles it).
            Ok(Err(r)) => tracing::info!(?r, "a claim ended before its send was recorded"),
            Err(e) => tracing::warn!("cannot record a send under a claim: {e}"),
        }
    }

    /// `inReplyTo`: the user messages of the newest page after `message_id`, if any, refuse.
    async fn check_reply(
        &self,
        call: &Call,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<(), CallError> {
        let page: MessageListResponse = self
            .request(
                call,
                &Endpoint::ListMessages {
                    conversation_id: conversation_id.to_owned(),
                    page: Page::default(),
                },
            )
            .await?;
        let Some(at) = page.messages.iter().position(|m| m.id == message_id) else {
            return Err(CallError::invalid(
                "inReplyTo",
                format!(
                    "message {message_id} is not among the newest 100 messages of conversation {conversation_id}: answer a recent message, or claim the conversation"
                ),
            ));
        };
        let newer: Vec<_> = page.messages[at + 1..]
            .iter()
            .filter(|m| m.author.kind == AuthorType::User)
            .collect();
        let arrived: Vec<Value> = newer[newer.len().saturating_sub(MAX_SHOWN)..]
            .iter()
            .filter_map(|m| serde_json::to_value(m).ok())
            .collect();
        if arrived.is_empty() {
            return Ok(());
        }
        Err(CallError::Superseded {
            conversation_id: conversation_id.to_owned(),
            arrived,
            claimed: false,
        })
    }
}
