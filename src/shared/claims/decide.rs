//! The decisions, once, on one entry: the in-memory store runs them and the Redis scripts
//! mirror them.

use std::time::Duration;

use super::{
    ClaimAnswer, ClaimAsk, Claimed, Held, MAX_PENDING, Pending, RECENT, Refusal, Release, Token,
    WorkChange, WorkEntry, WorkNote,
};

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
                last_secret: std::mem::take(&mut e.last_secret),
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
    e.last_secret.clone_from(&ask.secret);
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
        None if e.last_secret != token.secret => Err(Refusal::Unknown),
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

#[cfg(test)]
mod tests {
    use super::super::*;

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
