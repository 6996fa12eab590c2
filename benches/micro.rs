//! Micro benchmarks of the per-call work the server adds: an actor round trip through a handle,
//! the dispatcher's admission decision, switchboard validation on a cache hit, JWT minting,
//! webhook envelope parsing, and tool argument decoding and result encoding.
//!
//! `cargo bench --bench micro`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

use zendesk_messaging_mcp::actors::switchboard::Picture;
use zendesk_messaging_mcp::actors::{Actors, SupervisorSettings};
use zendesk_messaging_mcp::mcp::content::parse_content;
use zendesk_messaging_mcp::secret::Secret;
use zendesk_messaging_mcp::server::simulator_config;
use zendesk_messaging_mcp::sunco::auth::{Scope, mint_jwt};
use zendesk_messaging_mcp::sunco::endpoints::Endpoint;
use zendesk_messaging_mcp::sunco::wire::{
    Message, Switchboard, SwitchboardIntegration, WebhookEnvelope,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn start_actors(rt: &tokio::runtime::Runtime, queue_capacity: usize) -> Actors {
    // Nothing listens upstream: these benchmarks never reach it.
    let config = simulator_config("http://127.0.0.1:9").expect("config");
    let mut settings = SupervisorSettings::default();
    settings.limits.queue_capacity = queue_capacity;
    rt.block_on(Actors::start(&config, settings))
        .expect("actors")
}

fn actor_round_trip(c: &mut Criterion) {
    let rt = runtime();
    let actors = start_actors(&rt, 16);
    c.bench_function(
        "actor round trip (tracker status through its handle)",
        |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    actors
                        .tracker
                        .status("5f0c1e2d3b4a596877889900")
                        .await
                        .expect("status"),
                )
            })
        },
    );
    // A queue of zero refuses every call at admission: this is the decision and the answer,
    // through the handle, without any HTTP.
    let refusing = start_actors(&rt, 0);
    let endpoint = Endpoint::GetConversation {
        conversation_id: "5f0c1e2d3b4a596877889900".into(),
    };
    let call = zendesk_messaging_mcp::call::Call::internal();
    c.bench_function(
        "dispatcher admission decision (submit, refuse, answer)",
        |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    refusing
                        .dispatcher
                        .call(&call, &endpoint)
                        .await
                        .expect_err("busy"),
                )
            })
        },
    );
}

fn picture() -> Picture {
    let sbi = |id: &str, name: &str, kind: &str, next: Option<&str>| SwitchboardIntegration {
        id: id.into(),
        name: name.into(),
        integration_id: format!("int{id}"),
        integration_type: kind.into(),
        deliver_standby_events: false,
        next_switchboard_integration_id: next.map(str::to_owned),
        message_history_count: None,
    };
    Picture {
        switchboard: Some(Switchboard {
            id: "sb".into(),
            enabled: true,
            default_switchboard_integration_id: Some("a".into()),
        }),
        switchboard_integrations: vec![
            sbi("a", "bot", "custom", Some("b")),
            sbi("b", "zd-agentWorkspace", "zd:agentWorkspace", None),
            sbi("c", "triage", "custom", None),
        ],
    }
}

fn switchboard_validation(c: &mut Criterion) {
    let p = picture();
    c.bench_function(
        "switchboard validation on a cache hit (by name, and next)",
        |b| {
            b.iter(|| {
                black_box(
                    p.resolve(black_box("zd-agentWorkspace"), Some("a"))
                        .expect("name"),
                );
                black_box(p.resolve(black_box("next"), Some("a")).expect("next"));
            })
        },
    );
}

fn jwt(c: &mut Criterion) {
    let secret = Secret::new("a-secret-of-a-reasonable-length-0123456789");
    c.bench_function("JWT minting (HS256)", |b| {
        b.iter(|| {
            black_box(
                mint_jwt(
                    "app_5f0c1e2d3b4a596877889901",
                    &secret,
                    Scope::App,
                    Some(4_000_000_000),
                )
                .expect("jwt"),
            )
        })
    });
}

fn webhook(c: &mut Criterion) {
    let body = json!({
        "app": {"id": "5f0c1e2d3b4a596877889900"},
        "webhook": {"id": "5f0c1e2d3b4a596877889904", "version": "v2"},
        "events": (0..10).map(|i| json!({
            "id": format!("5f0c1e2d3b4a5968778899{i:02}"),
            "type": "conversation:message:delivery:failure",
            "createdAt": "2026-11-25T10:00:00.000Z",
            "payload": {
                "user": {"id": "5f0c1e2d3b4a596877889905", "authenticated": false},
                "conversation": {"id": "5f0c1e2d3b4a596877889906", "type": "personal"},
                "message": {"id": "5f0c1e2d3b4a596877889907"},
                "destination": {"type": "messenger", "integrationId": "5f0c1e2d3b4a596877889908"},
                "isFinalEvent": true,
                "error": {"code": "uncategorized_error", "message": "cannot render a form"}
            }
        })).collect::<Vec<_>>()
    })
    .to_string();
    c.bench_function("webhook envelope parsing (10 events)", |b| {
        b.iter(|| {
            black_box(serde_json::from_str::<WebhookEnvelope>(black_box(&body)).expect("parse"))
        })
    });
}

fn tool_arguments(c: &mut Criterion) {
    let carousel = json!({"type": "carousel", "items": (0..5).map(|i| json!({
        "title": format!("Item {i}"), "description": "A thing", "mediaUrl": "https://example.org/i.png",
        "actions": [{"type": "postback", "text": "Pick", "payload": format!("ITEM_{i}")},
                    {"type": "link", "text": "More", "uri": "https://example.org/more"}]
    })).collect::<Vec<_>>()});
    c.bench_function("tool argument decoding (carousel content, checked)", |b| {
        b.iter(|| black_box(parse_content(black_box(carousel.clone())).expect("content")))
    });
    let message: Message = serde_json::from_value(json!({
        "id": "5f0c1e2d3b4a596877889909", "received": "2026-11-25T10:00:00.000Z",
        "author": {"type": "business"}, "content": carousel, "source": {"type": "api:conversations"}
    }))
    .expect("message");
    c.bench_function(
        "tool result encoding (a sent carousel as structured content)",
        |b| {
            b.iter(|| {
                let v = serde_json::to_value(black_box(&message)).expect("value");
                black_box(v.to_string())
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = actor_round_trip, switchboard_validation, jwt, webhook, tool_arguments
}
criterion_main!(benches);
