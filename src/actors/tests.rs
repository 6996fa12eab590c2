//! The actors in one process, with paused time: the supervisor's restarts and their limit, the
//! dispatcher's retries against an upstream that cannot be reached, and the delivery tracker's
//! counts.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::config::{AuthMode, Config};
use crate::secret::Secret;
use crate::sunco::auth::Scope;
use crate::sunco::endpoints::Endpoint;
use crate::sunco::events;

/// A configuration whose upstream is a loopback port nothing listens on.
fn config() -> Config {
    Config {
        app_id: "5f0c1e2d3b4a596877889900".into(),
        key_id: "app_5f0c1e2d3b4a596877889901".into(),
        key_secret: Secret::new("a-secret"),
        key_secret_file: None,
        scope: Scope::App,
        auth: AuthMode::Jwt,
        api_url: url::Url::parse("http://127.0.0.1:9").expect("url"),
        webhook_secret: Some(Secret::new("hook")),
        timeout: Duration::from_secs(30),
        jwt_lifetime: Duration::from_secs(3600),
    }
}

#[tokio::test(start_paused = true)]
async fn a_killed_actor_is_restarted_and_a_restart_storm_stops_the_supervisor() {
    let settings = SupervisorSettings {
        max_restarts: 2,
        restart_window: Duration::from_secs(60),
        ..Default::default()
    };
    let actors = Actors::start(&config(), settings).await.expect("start");
    for n in 1..=2 {
        actors.kill(ActorKind::Dispatcher);
        while actors.restarts().await.expect("restarts") < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(actors.is_running(), "{n} restarts are within the limit");
    }
    // Past the window, restarts are forgiven.
    tokio::time::sleep(Duration::from_secs(61)).await;
    actors.kill(ActorKind::Tracker);
    while actors.restarts().await.expect("restarts") < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(actors.is_running(), "old restarts leave the window");
    actors.kill(ActorKind::Tracker);
    tokio::time::sleep(Duration::from_millis(50)).await;
    actors.kill(ActorKind::Tracker);
    tokio::time::timeout(Duration::from_secs(5), actors.stopped())
        .await
        .expect("three restarts within the window stop the supervisor");
    assert!(!actors.is_running());
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_upstream_is_retried_with_backoff_then_reported() {
    let mut settings = SupervisorSettings::default();
    settings.limits.max_attempts = 4;
    let actors = Actors::start(&config(), settings).await.expect("start");
    let started = tokio::time::Instant::now();
    let e = actors
        .dispatcher
        .call(
            &crate::call::Call::internal(),
            &Endpoint::GetConversation {
                conversation_id: "5f0c1e2d3b4a5968778899ff".into(),
            },
        )
        .await
        .expect_err("nothing listens");
    assert_eq!(e.class(), crate::error::ErrorClass::Unreachable, "{e}");
    assert_eq!(actors.dispatcher.stats().await.expect("stats").attempts, 4);
    // Three waits of the backoff policy (250 ms doubling, ±50%) passed between the attempts.
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    actors.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_tracker_counts_recorded_duplicate_unusable_and_ignored_events() {
    let actors = Actors::start(&config(), SupervisorSettings::default())
        .await
        .expect("start");
    let batch = [
        json!({"id": "e1", "type": "conversation:message:delivery:failure",
               "payload": {"message": {"id": "m1"}, "conversation": {"id": "c1"}}}),
        json!({"id": "e2", "type": "conversation:message:delivery:user", "payload": {}}),
        json!({"id": "e3", "type": "conversation:typing"}),
    ];
    let read = |events: &[serde_json::Value]| -> delivery::ReadEvents {
        events.iter().map(events::read).collect()
    };
    let counts = actors.tracker.record(read(&batch)).await.expect("stored");
    assert_eq!(
        (
            counts.recorded,
            counts.duplicates,
            counts.unusable,
            counts.ignored
        ),
        (1, 0, 1, 1)
    );
    let again = actors.tracker.record(read(&batch)).await.expect("stored");
    assert_eq!((again.recorded, again.duplicates), (0, 2), "a retried POST");
    let failures = actors
        .tracker
        .failures(Some("c1"), 10)
        .await
        .expect("failures");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].message_id, "m1");
    // The record outlives a restart of the tracker.
    actors.kill(ActorKind::Tracker);
    while actors.restarts().await.expect("restarts") < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = actors.tracker.status("m1").await.expect("status");
    assert_eq!(status.map(|s| s.events.len()), Some(1));
    actors.shutdown().await;
}
