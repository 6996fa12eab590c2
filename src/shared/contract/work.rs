//! The work queue's contract.

use std::time::Duration;

use crate::sunco::ids::now_unix_ms;

/// The work queue: conversations 24 hex digits each, `c1`..`c6` of the contract.
pub(crate) async fn claims(store: &dyn crate::shared::ClaimStore) {
    use crate::shared::{ClaimAnswer, ClaimAsk, Refusal, Release, Token, WorkChange, WorkNote};
    let conv = |n: u8| format!("c0ffee00000000000000000{n}");
    let user = |c: &str, m: &str, at: i64| WorkNote {
        conversation_id: c.to_owned(),
        at,
        change: WorkChange::UserMessage {
            message_id: m.to_owned(),
            channel: Some("whatsapp".into()),
        },
    };
    let control = |c: &str, active: &str, at: i64| WorkNote {
        conversation_id: c.to_owned(),
        at,
        change: WorkChange::Control {
            active: Some(active.to_owned()),
        },
    };
    let ask = |holder: &str, quiet_ms: u64, lease_ms: u64| ClaimAsk {
        holder: holder.to_owned(),
        secret: Token::new_secret(),
        quiet: Duration::from_millis(quiet_ms),
        lease: Duration::from_millis(lease_ms),
        ..ClaimAsk::default()
    };
    let claimed = |a: ClaimAnswer| match a {
        ClaimAnswer::Claimed(c) => *c,
        other => panic!("expected a claim, got {other:?}"),
    };
    let t0 = now_unix_ms();
    let mut events = store.subscribe();
    store
        .note(vec![user(&conv(1), "m1", t0), control(&conv(1), "bot", t0)])
        .await
        .expect("note");
    assert!(
        tokio::time::timeout(Duration::from_secs(2), events.next())
            .await
            .is_ok(),
        "a user message wakes waiters"
    );
    // One holder at a time.
    let a = claimed(
        store
            .claim(&ask("agent-a", 0, 60_000))
            .await
            .expect("claim"),
    );
    assert_eq!(a.conversation_id, conv(1));
    assert_eq!(a.pending.len(), 1, "the claim shows the unanswered message");
    assert_eq!(a.channel.as_deref(), Some("whatsapp"));
    let second = store
        .claim(&ask("agent-b", 0, 60_000))
        .await
        .expect("claim");
    assert!(
        matches!(second, ClaimAnswer::Nothing { .. }),
        "a held conversation is not handed out again: {second:?}"
    );
    let mut by_name = ask("agent-b", 0, 60_000);
    by_name.conversation_id = Some(conv(1));
    assert!(
        matches!(
            store.claim(&by_name).await.expect("claim"),
            ClaimAnswer::Held { yours: false, .. }
        ),
        "asked for by name, a held conversation says who holds it"
    );
    let token = Token::of(&a);
    assert_eq!(Token::parse(&token.to_string()), Some(token.clone()));
    assert_eq!(store.check("agent-a", &token, false).await, Ok(Ok(())));
    assert_eq!(
        store.check("agent-b", &token, false).await,
        Ok(Err(Refusal::NotYours)),
        "a claim is its holder's"
    );
    let forged = Token {
        secret: Token::new_secret(),
        ..token.clone()
    };
    assert_eq!(
        store.check("agent-a", &forged, false).await,
        Ok(Err(Refusal::Unknown))
    );
    // A message after the claim supersedes a send, once.
    store
        .note(vec![user(&conv(1), "m2", t0 + 1)])
        .await
        .expect("note");
    assert!(
        matches!(
            store.check("agent-a", &token, true).await,
            Ok(Err(Refusal::Superseded { .. }))
        ),
        "a peek sees the newer message"
    );
    match store.check("agent-a", &token, false).await {
        Ok(Err(Refusal::Superseded { arrived })) => {
            assert_eq!(arrived.len(), 1);
            assert_eq!(arrived[0].message_id, "m2");
        }
        other => panic!("a newer message supersedes the send: {other:?}"),
    }
    assert_eq!(
        store.check("agent-a", &token, false).await,
        Ok(Ok(())),
        "shown the newer message, the holder may send"
    );
    // Renewing shows what is unanswered.
    let renewed = store
        .renew("agent-a", &token, Duration::from_secs(60))
        .await
        .expect("renew")
        .expect("renewed");
    assert_eq!(renewed.pending.len(), 2);
    // Answered: nothing waits, the token is spent.
    assert_eq!(
        store
            .release("agent-a", &token, Release::Answered { keep: false })
            .await
            .map(|r| r.map(|waited| waited.is_some())),
        Ok(Ok(true)),
        "an answer says how long the message waited"
    );
    assert!(matches!(
        store.check("agent-a", &token, false).await,
        Ok(Err(Refusal::Lost { ref reason, .. })) if reason == "answered"
    ));
    assert_eq!(
        store.check("agent-a", &forged, false).await,
        Ok(Err(Refusal::Unknown)),
        "a forged token for an ended claim is no claim either"
    );
    let mut again = ask("agent-b", 0, 60_000);
    again.conversation_id = Some(conv(1));
    assert_eq!(
        store.claim(&again).await,
        Ok(ClaimAnswer::NotWaiting),
        "an answered conversation does not wait"
    );
    store
        .note(vec![user(&conv(1), "m2", t0 + 1)])
        .await
        .expect("note");
    assert_eq!(
        store.claim(&again).await,
        Ok(ClaimAnswer::NotWaiting),
        "a webhook delivered again is not a new message"
    );
    // Quiet period: handed out only once the customer is quiet.
    store
        .note(vec![user(&conv(2), "m3", t0 + 2)])
        .await
        .expect("note");
    match store.claim(&ask("agent-a", 300, 200)).await.expect("claim") {
        ClaimAnswer::Nothing {
            ready_in: Some(wait),
        } => assert!(wait <= Duration::from_millis(300), "{wait:?}"),
        other => panic!("not before the quiet period: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    let quiet = claimed(store.claim(&ask("agent-a", 300, 200)).await.expect("claim"));
    assert_eq!(quiet.conversation_id, conv(2));
    // A lapsed lease: free for another, the old holder fenced.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let taken = claimed(
        store
            .claim(&ask("agent-b", 0, 60_000))
            .await
            .expect("claim"),
    );
    assert_eq!(taken.conversation_id, conv(2));
    assert!(taken.lapsed, "the claim replaced a lapsed one");
    assert!(taken.fence > quiet.fence, "fences grow");
    assert!(matches!(
        store.check("agent-a", &Token::of(&quiet), false).await,
        Ok(Err(Refusal::Lost { ref reason, .. })) if reason == "taken"
    ));
    // Control moving away from the claim's integration drops it.
    store
        .note(vec![
            user(&conv(3), "m4", t0 + 3),
            control(&conv(3), "bot", t0 + 3),
        ])
        .await
        .expect("note");
    let mut bot = ask("agent-a", 0, 60_000);
    bot.integration = Some("bot".into());
    bot.conversation_id = Some(conv(3));
    let held = claimed(store.claim(&bot).await.expect("claim"));
    store
        .note(vec![control(&conv(3), "agent", t0 + 4)])
        .await
        .expect("note");
    assert!(matches!(
        store.check("agent-a", &Token::of(&held), false).await,
        Ok(Err(Refusal::Lost { ref reason, .. })) if reason == "handed_over"
    ));
    assert_eq!(
        store.claim(&bot).await,
        Ok(ClaimAnswer::NotInControl {
            active: Some("agent".into())
        }),
        "the guard's rule: only where the caller's integration controls"
    );
    // A business message answers what came before it.
    store
        .note(vec![
            user(&conv(4), "m5", t0 + 5),
            WorkNote {
                conversation_id: conv(4),
                at: t0 + 6,
                change: WorkChange::BusinessMessage { fence: None },
            },
        ])
        .await
        .expect("note");
    let mut four = ask("agent-a", 0, 60_000);
    four.conversation_id = Some(conv(4));
    assert_eq!(store.claim(&four).await, Ok(ClaimAnswer::NotWaiting));
    // Skipped: back behind what waited already.
    store
        .note(vec![user(&conv(5), "m6", t0 + 7)])
        .await
        .expect("note");
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .note(vec![user(&conv(6), "m7", t0 + 8)])
        .await
        .expect("note");
    // (Conversation 3 waits too, but for the agent now in control.)
    let mut bots = ask("agent-a", 0, 60_000);
    bots.integration = Some("bot".into());
    let five = claimed(store.claim(&bots).await.expect("claim"));
    assert_eq!(five.conversation_id, conv(5), "the longest wait first");
    assert_eq!(
        store
            .holds(&[conv(5), conv(6)])
            .await
            .expect("holds")
            .iter()
            .map(Option::is_some)
            .collect::<Vec<_>>(),
        vec![true, false]
    );
    let stats = store.stats().await.expect("stats");
    assert!(stats.claimed >= 1 && stats.unclaimed >= 1, "{stats:?}");
    assert_eq!(
        store
            .release("agent-a", &Token::of(&five), Release::Skipped)
            .await,
        Ok(Ok(None))
    );
    let six = claimed(store.claim(&bots).await.expect("claim"));
    assert_eq!(six.conversation_id, conv(6), "a skipped one waits behind");
    let five_again = claimed(store.claim(&bots).await.expect("claim"));
    assert_eq!(five_again.conversation_id, conv(5));
}
