//! The invariants of each trait as checks any implementation must pass. Each panics, naming
//! the broken invariant, when one does not hold. Where they wait (2 s at most) they sleep, so
//! paused tokio time (`#[tokio::test(start_paused = true)]`) makes them instant for an
//! in-memory store; each uses its own keys, so a store may be shared between them.

use std::time::Duration;

use crate::config::RequestRate;
use crate::shared::{
    Change, ConversationEntry, ConversationIndex, ConversationNote, DeliveryEntry, DeliveryStore,
    EventRecord, Heard, IdempotencyStore, InboundLimits, Invalidation, Keep, RateBudget, SeenEntry,
    SendRecord, SendState, SessionOwners,
};
use crate::sunco::ids::now_unix_ms;

mod work;

pub(crate) use work::claims;

pub(crate) async fn inbound_limits(limits: &dyn InboundLimits) {
    let rate = RequestRate {
        per_second: 2.0,
        burst: 3,
    };
    for n in 0..3 {
        assert_eq!(
            limits.take("contract-a", rate).await,
            Ok(None),
            "a new key starts with a full bucket (request {n})"
        );
    }
    let wait = limits
        .take("contract-a", rate)
        .await
        .expect("answers")
        .expect("an empty bucket refuses");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(500),
        "the wait is until one token refills: {wait:?}"
    );
    assert_eq!(
        limits.take("contract-b", rate).await,
        Ok(None),
        "keys are independent"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        limits.take("contract-a", rate).await,
        Ok(None),
        "the bucket refills at the rate"
    );
}

fn note(id: &str, at: i64, change: Change) -> ConversationNote {
    ConversationNote {
        conversation_id: id.to_owned(),
        at,
        change,
    }
}

/// `index` must hold at most 3 conversations, for an hour.
pub(crate) async fn conversation_index(index: &dyn ConversationIndex) {
    let t = now_unix_ms() - 60_000;
    assert_eq!(index.reach().await, Ok(None), "it has heard of nothing yet");
    let user = |channel: &str| Change::Message {
        from_user: true,
        channel: Some(channel.to_owned()),
    };
    // Applies `notes`, then reads contract-a back.
    let then_a = async |notes: Vec<ConversationNote>| {
        index.apply(notes).await.expect("apply");
        index
            .get("contract-a")
            .await
            .expect("get")
            .expect("a is known")
    };
    let a = then_a(vec![
        note("contract-a", t, Change::Created),
        note("contract-a", t + 10, user("whatsapp")),
        note("contract-b", t + 20, Change::Activity),
    ])
    .await;
    assert_eq!(
        a.created_at,
        Some(t),
        "created when conversation:create said"
    );
    assert_eq!(a.last_activity_at, t + 10, "the latest note's time");
    assert!(a.awaiting_reply, "the user wrote last");
    assert_eq!(a.last_user_channel.as_deref(), Some("whatsapp"));
    // The business answers; then a late, older user message arrives: it changes nothing.
    let a = then_a(vec![
        note(
            "contract-a",
            t + 30,
            Change::Message {
                from_user: false,
                channel: None,
            },
        ),
        note("contract-a", t + 5, user("messenger")),
        note(
            "contract-a",
            t + 40,
            Change::Control {
                active: Some("agents".into()),
                pending: None,
            },
        ),
        note(
            "contract-a",
            t + 35,
            Change::Control {
                active: Some("bot".into()),
                pending: Some("agents".into()),
            },
        ),
    ])
    .await;
    assert!(!a.awaiting_reply, "the business wrote last");
    assert_eq!(
        a.last_user_channel.as_deref(),
        Some("whatsapp"),
        "an older note arriving late changes nothing"
    );
    assert_eq!(
        (
            a.active_switchboard_integration.as_deref(),
            a.pending_switchboard_integration.as_deref()
        ),
        (Some("agents"), None),
        "the latest control state wins"
    );
    // Control read from the API: a known conversation's control, not its activity; and no
    // conversation the events never named.
    let seen = |id: &str, at: i64| {
        note(
            id,
            at,
            Change::ControlSeen {
                active: Some("bot".into()),
                pending: None,
            },
        )
    };
    let a2 = then_a(vec![
        seen("contract-a", t + 45),
        seen("contract-unheard", t + 45),
    ])
    .await;
    assert_eq!(
        a2.active_switchboard_integration.as_deref(),
        Some("bot"),
        "a newer read of the control state counts"
    );
    assert_eq!(
        a2.last_activity_at, a.last_activity_at,
        "a read is no activity"
    );
    assert_eq!(
        index.get("contract-unheard").await,
        Ok(None),
        "a read does not make the index know a conversation"
    );
    let ids = |entries: Vec<ConversationEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.conversation_id).collect()
    };
    assert_eq!(
        ids(index.recent(10).await.expect("recent")),
        ["contract-a", "contract-b"],
        "newest activity first"
    );
    assert_eq!(
        index.recent(1).await.expect("recent").len(),
        1,
        "at most limit"
    );
    assert_eq!(
        index.reach().await,
        Ok(Some(t)),
        "it holds every conversation heard of since its first note"
    );
    // After each batch of notes, the conversation named is forgotten.
    let cases = [
        (
            vec![
                note("contract-c", t + 50, Change::Activity),
                note("contract-d", t + 60, Change::Activity),
            ],
            "contract-b",
            "past the bound, the least recently active is forgotten first",
        ),
        (
            vec![
                note("contract-a", t + 70, Change::Removed),
                note("contract-a", t + 65, Change::Activity),
            ],
            "contract-a",
            "a removal forgets, and a note from before it does not bring it back",
        ),
        (
            vec![note(
                "contract-e",
                now_unix_ms() - 2 * 3_600_000,
                Change::Created,
            )],
            "contract-e",
            "what has been quiet longer than the age is forgotten",
        ),
    ];
    for (notes, id, why) in cases {
        index.apply(notes).await.expect("apply");
        assert_eq!(index.get(id).await, Ok(None), "{why}");
    }
    // Forgetting by count moves the reach past the forgotten one's activity.
    let later = now_unix_ms() + 60_000;
    index
        .apply(
            (1..=4)
                .map(|n| note(&format!("contract-late-{n}"), later + n, Change::Activity))
                .collect(),
        )
        .await
        .expect("apply");
    assert_eq!(
        index.reach().await,
        Ok(Some(later + 1)),
        "the reach follows what the count bound forgot"
    );
}

pub(crate) async fn idempotency(store: &dyn IdempotencyStore) {
    let mut lease = store
        .acquire("contract-conv", "k1", 7)
        .await
        .expect("acquire");
    assert_eq!(
        lease.record(),
        &SendRecord {
            message: 7,
            state: SendState::Fresh
        },
        "a new key starts fresh with the caller's fingerprint"
    );
    let sent = SendRecord {
        message: 7,
        state: SendState::Sent("[]".to_owned()),
    };
    lease.set(sent.clone()).await.expect("set");
    // Held: another acquire of the key waits.
    let waiting = tokio::time::timeout(
        Duration::from_secs(1),
        store.acquire("contract-conv", "k1", 8),
    )
    .await;
    assert!(waiting.is_err(), "a held key makes the next holder wait");
    drop(lease);
    let again = store
        .acquire("contract-conv", "k1", 8)
        .await
        .expect("acquire");
    assert_eq!(again.record(), &sent, "the next holder reads what was set");
    let other = store
        .acquire("contract-other", "k1", 9)
        .await
        .expect("acquire");
    assert_eq!(
        other.record().state,
        SendState::Fresh,
        "keys of different scopes are independent"
    );
}

/// `store` must keep at most 2 failures and 3 event ids, for 2 seconds.
pub(crate) async fn delivery(store: &dyn DeliveryStore) {
    let entry = |m: &str, c: Option<&str>, n: u32, failed: bool| DeliveryEntry {
        message_id: m.to_owned(),
        conversation_id: c.map(str::to_owned),
        event: serde_json::json!({"n": n}),
        failure: failed.then(|| serde_json::json!({"message": m, "n": n})),
    };
    let event = |id: &str, keep: Keep| EventRecord {
        event_id: id.to_owned(),
        keep,
    };
    let firsts = store
        .record(vec![
            event("e1", Keep::Delivery(entry("m1", None, 1, false))),
            event("e2", Keep::Delivery(entry("m1", Some("c1"), 2, true))),
            event("e1", Keep::Delivery(entry("m1", None, 9, false))),
            event("e3", Keep::Nothing),
        ])
        .await
        .expect("record");
    assert_eq!(
        firsts,
        [true, true, false, true],
        "one answer per event, in order; an id is new once, within a batch too"
    );
    let m1 = store.events("m1").await.expect("events").expect("m1 kept");
    assert_eq!(
        m1.conversation_id.as_deref(),
        Some("c1"),
        "the first conversation named"
    );
    assert_eq!(
        m1.events,
        [serde_json::json!({"n": 1}), serde_json::json!({"n": 2})],
        "events in the order recorded; a repeat keeps nothing"
    );
    store
        .record(vec![
            event("e4", Keep::Delivery(entry("m2", Some("c2"), 3, true))),
            event("e5", Keep::Delivery(entry("m3", Some("c1"), 4, true))),
        ])
        .await
        .expect("record");
    let all = store.failures(None, 10).await.expect("failures");
    assert_eq!(
        all.len(),
        2,
        "failures are bounded, the oldest forgotten first"
    );
    assert_eq!(all[0]["n"], 4, "newest first");
    let c1 = store.failures(Some("c1"), 10).await.expect("failures");
    assert_eq!(c1.len(), 1, "filtered by conversation");
    assert_eq!(c1[0]["n"], 4);
    // e1 .. e5 were seen; 3 ids are kept, so e1 is forgotten and e5 is not.
    let again = store
        .record(vec![event("e1", Keep::Nothing), event("e5", Keep::Nothing)])
        .await
        .expect("record");
    assert_eq!(
        again,
        [true, false],
        "ids are bounded, the oldest forgotten first"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(store.events("m1").await, Ok(None), "events expire with age");
    assert_eq!(
        store.failures(None, 10).await,
        Ok(vec![]),
        "failures expire with age"
    );
    let seen = SeenEntry {
        message_id: "m9".to_owned(),
        conversation_id: "c9".to_owned(),
        message: "{}".to_owned(),
    };
    store.remember(vec![seen.clone()]).await.expect("remember");
    assert_eq!(
        store.seen("m9").await,
        Ok(Some(seen)),
        "a seen message is found"
    );
    assert_eq!(store.last_event().await, Ok(None));
    store.note_event(2_000).await.expect("note");
    store.note_event(1_000).await.expect("note");
    assert_eq!(
        store.last_event().await,
        Ok(Some(2_000)),
        "the latest is kept"
    );
}

/// `budget` must have rate 10/s, burst 3 and a floor of 1/s, used by nothing else.
pub(crate) async fn rate_budget(budget: &dyn RateBudget) {
    let g = budget.grant(5).await.expect("grant");
    assert_eq!(g.granted, 3, "at most the burst at once");
    assert!(
        g.wait > Duration::ZERO && g.wait <= Duration::from_millis(100),
        "then the wait for one refill: {g:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        budget.grant(5).await.expect("grant").granted,
        2,
        "refills at the rate"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    budget.throttled(None).await.expect("throttled");
    assert!((budget.rate() - 5.0).abs() < 1e-9, "a 429 halves the rate");
    assert_eq!(
        budget.grant(1).await.expect("grant").granted,
        0,
        "a 429 takes what was left"
    );
    assert!(!budget.try_take(), "nor is a permit taken at once");
    for _ in 0..10 {
        budget.throttled(None).await.expect("throttled");
    }
    assert!((budget.rate() - 1.0).abs() < 1e-9, "not below the floor");
    budget.succeeded().await.expect("succeeded");
    assert!(budget.rate() > 1.0, "a success raises the rate by a step");
    for _ in 0..100 {
        budget.succeeded().await.expect("succeeded");
    }
    assert!(
        (budget.rate() - 10.0).abs() < 1e-9,
        "back to the full rate, not past it"
    );
    budget
        .throttled(Some(Duration::from_secs(1)))
        .await
        .expect("throttled");
    assert!(
        !budget.try_take(),
        "a pause holds for permits taken at once"
    );
    let g = budget.grant(1).await.expect("grant");
    assert!(
        g.granted == 0 && g.paused && g.wait > Duration::from_millis(900),
        "a Retry-After pauses every grant: {g:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        !budget.grant(1).await.expect("grant").paused,
        "the pause ends when it says"
    );
    // A reloaded rate_limit: a lower full rate and burst hold at once.
    assert_eq!(budget.reshape(2.0, 1).await.expect("reshape"), (2.0, 1));
    assert!(budget.rate() <= 2.0, "not above the new full rate");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        budget.grant(5).await.expect("grant").granted <= 1,
        "at most the new burst at once"
    );
}

pub(crate) async fn invalidation(bus: &dyn Invalidation) {
    let mut first = bus.subscribe();
    let mut second = bus.subscribe();
    bus.publish().await.expect("publish");
    assert_eq!(first.next().await, Heard::Changed, "every subscriber hears");
    assert_eq!(
        second.next().await,
        Heard::Changed,
        "every subscriber hears"
    );
    let mut late = bus.subscribe();
    bus.publish().await.expect("publish");
    assert_eq!(
        late.next().await,
        Heard::Changed,
        "a later subscriber hears what follows"
    );
    for _ in 0..1000 {
        bus.publish().await.expect("publish");
    }
    let mut heard = vec![];
    while heard.last() != Some(&Heard::Lost) && heard.len() < 2000 {
        heard.push(first.next().await);
    }
    assert_eq!(
        heard.last(),
        Some(&Heard::Lost),
        "a subscriber that fell behind is told to drop everything"
    );
}

/// `one` and `other` are two replicas' views of the same sessions (the same store in memory).
pub(crate) async fn session_owners(one: &dyn SessionOwners, other: &dyn SessionOwners) {
    assert_eq!(one.owner("s1").await.expect("owner"), None, "never opened");
    one.record("s1", "token:alice").await.expect("record");
    assert_eq!(
        other.owner("s1").await.expect("owner").as_deref(),
        Some("token:alice"),
        "every replica reads the owner"
    );
    let mut heard = other.ended();
    one.end("s1").await.expect("end");
    let ended = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await;
    assert_eq!(
        ended.ok().and_then(Result::ok).as_deref(),
        Some("s1"),
        "every replica hears the end"
    );
    for replica in [one, other] {
        assert_eq!(
            replica.owner("s1").await.expect("owner"),
            None,
            "an ended session is unknown everywhere"
        );
    }
}
