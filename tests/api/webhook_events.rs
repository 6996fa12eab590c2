//! The webhook route takes every payload the spec allows: for every event type the server
//! reads, a minimal event (what the spec requires, plus the identifiers the server needs) and a
//! full one (every property the spec declares) are generated from the official spec, posted,
//! and found again through the tools. What cannot be used is counted, logged and answered, never
//! acknowledged and dropped; what was not stored is answered 503 so the upstream retries.

use std::time::Duration;

use serde_json::{Value, json};

use zendesk_messaging_mcp::actors::{ActorKind, SupervisorSettings};
use zendesk_messaging_mcp::server::HttpOptions;
use zendesk_messaging_mcp::sunco::wire::event_type;

use crate::mcp_support::TestServer;
use crate::spec::spec;
use crate::support::eventually;

const APP: &str = "5f0c1e2d3b4a596877889900";
const SECRET: &str = "sim-webhook-secret";

fn hex_id() -> String {
    format!("{:024x}", rand::random::<u128>() >> 32)
}

/// Sets `value` at the JSON pointer-like `path` (object keys), creating objects on the way.
fn set(target: &mut Value, path: &[&str], value: Value) {
    let mut at = target;
    for key in &path[..path.len() - 1] {
        if !at.get(*key).is_some_and(Value::is_object) {
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = value;
}

/// An event of type `kind` generated from the spec, with fresh identifiers: the event id and
/// type, and the payload's message id (and conversation id for the types about a
/// conversation).
fn generated(kind: &str, full: bool) -> (Value, String, String) {
    let (_, schema) = spec()
        .event_schemas()
        .into_iter()
        .find(|(t, _)| t == kind)
        .unwrap_or_else(|| panic!("the spec has no schema for {kind}"));
    let mut event = spec().sample(&schema, full);
    let (message, conversation) = (hex_id(), hex_id());
    set(&mut event, &["id"], Value::from(hex_id()));
    set(&mut event, &["type"], Value::from(kind));
    if kind.starts_with("conversation:message") {
        set(
            &mut event,
            &["payload", "message", "id"],
            Value::from(message.clone()),
        );
    }
    if full || !kind.starts_with("conversation:message:delivery:") {
        set(
            &mut event,
            &["payload", "conversation", "id"],
            Value::from(conversation.clone()),
        );
    }
    (event, message, conversation)
}

fn envelope(events: Vec<Value>) -> Value {
    json!({"app": {"id": APP}, "webhook": {"id": "5e552ef595e5206375bb835e", "version": "v2"}, "events": events})
}

async fn post(t: &TestServer, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(t.server.webhook_url())
        .header("X-API-Key", SECRET)
        .json(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_event_type_the_server_reads_is_recorded_minimal_or_full() {
    let t = TestServer::start().await;
    for kind in event_type::READ_BY_SERVER {
        for full in [false, true] {
            let (event, message, conversation) = generated(kind, full);
            let body = envelope(vec![event.clone()]);
            let problems = spec().check_webhook(&body);
            assert!(
                problems.is_empty(),
                "{kind} (full: {full}) is not what the spec allows: {problems:?}\n{body:#}"
            );
            let (status, counts) = post(&t, &body).await;
            assert_eq!(status, 200, "{kind} full={full}: {counts}");
            assert_eq!(
                counts,
                json!({"recorded": 1, "duplicates": 0, "unusable": 0, "ignored": 0}),
                "{kind} full={full}"
            );
            if !kind.starts_with("conversation:message") {
                // About a conversation: the index knows it now (a removal forgets it).
                let known = t
                    .server
                    .actors
                    .tracker
                    .conversation(&conversation)
                    .await
                    .expect("the index answers");
                assert_eq!(
                    known.is_some(),
                    *kind != event_type::CONVERSATION_REMOVE,
                    "{kind} full={full}: {known:?}"
                );
                continue;
            }
            if *kind == event_type::MESSAGE {
                let found = t
                    .ok(
                        "get_message",
                        json!({"conversationId": conversation, "messageId": message}),
                    )
                    .await;
                assert_eq!(found["foundBy"], "seen", "{kind} full={full}: {found}");
                assert_eq!(found["message"]["id"], message.as_str());
                continue;
            }
            let status = t
                .ok("get_delivery_status", json!({"messageId": message}))
                .await;
            let expected = match *kind {
                event_type::DELIVERY_CHANNEL => "sentToChannel",
                event_type::DELIVERY_USER => "deliveredToUser",
                _ => "failed",
            };
            assert_eq!(status["state"], expected, "{kind} full={full}: {status}");
            assert_eq!(status["events"][0]["eventId"], event["id"]);
            if *kind == event_type::DELIVERY_FAILURE {
                let failures = t.ok("list_delivery_failures", json!({})).await;
                assert!(
                    failures["failures"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|f| f["messageId"] == message.as_str())),
                    "{kind} full={full}: {failures}"
                );
            }
        }
    }
}

#[tokio::test]
async fn what_cannot_be_used_is_counted_logged_and_answered_and_repeats_are_duplicates() {
    let t = TestServer::start().await;
    let (good, message, _) = generated(event_type::DELIVERY_FAILURE, false);
    let no_message = json!({"id": hex_id(), "type": event_type::DELIVERY_USER, "payload": {}});
    let no_id = json!({"type": event_type::MESSAGE, "payload": {}});
    let other = json!({"id": hex_id(), "type": "conversation:typing", "payload": {}});
    let body = envelope(vec![good.clone(), no_message.clone(), no_id, other]);
    let (status, counts) = post(&t, &body).await;
    assert_eq!(status, 200, "nothing a retry could store was left unstored");
    assert_eq!(
        counts,
        json!({"recorded": 1, "duplicates": 0, "unusable": 2, "ignored": 1})
    );
    // The upstream retries the same POST: nothing is recorded twice, nothing logged twice.
    let (_, counts) = post(&t, &envelope(vec![good, no_message])).await;
    assert_eq!(
        counts,
        json!({"recorded": 0, "duplicates": 2, "unusable": 0, "ignored": 0})
    );
    let failures = t.ok("list_delivery_failures", json!({})).await;
    let mine: Vec<_> = failures["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["messageId"] == message.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{failures}");
    assert_eq!(
        mine[0]["code"], "unknown",
        "a named default for the absent error"
    );
    let metrics = crate::telemetry::metrics_at(&format!("http://{}", t.server.addr)).await;
    for needle in [
        r#"outcome="unusable",type="conversation:message:delivery:user""#,
        r#"outcome="unusable",type="conversation:message""#,
        r#"outcome="duplicate""#,
        r#"outcome="ignored",type="conversation:typing""#,
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("sunco_webhook_events_total") && l.contains(needle)),
            "no {needle} in\n{metrics}"
        );
    }
    // An envelope that is none is refused (400, which the upstream does not retry).
    for bad in [
        json!({"events": []}),
        json!({"app": {"id": APP}, "events": {}}),
    ] {
        let (status, body) = post(&t, &bad).await;
        assert_eq!(status, 400, "{bad}");
        // Every route's error body: the class, and a sentence saying what was wrong.
        assert_eq!(body["error"], "invalid_argument", "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("envelope")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn events_that_were_not_stored_are_answered_503_so_the_upstream_retries() {
    let settings = SupervisorSettings {
        max_restarts: 1,
        ..Default::default()
    };
    let t = TestServer::start_with(settings, |_| {}).await;
    // A restart storm stops the supervisor: no tracker will store anything.
    t.server.actors.kill(ActorKind::Tracker);
    eventually("the tracker is back", || async {
        t.server.actors.restarts().await.is_ok_and(|n| n == 1)
    })
    .await;
    t.server.actors.kill(ActorKind::Tracker);
    tokio::time::timeout(Duration::from_secs(5), t.server.stopped())
        .await
        .expect("the supervisor stops");
    let (event, _, _) = generated(event_type::DELIVERY_CHANNEL, true);
    let (status, body) = post(&t, &envelope(vec![event])).await;
    assert_eq!(status, 503, "{body}");
}

/// The tracking status of one tool answer.
async fn tracking_of(t: &TestServer) -> Value {
    t.ok("list_delivery_failures", json!({})).await["tracking"].clone()
}

#[tokio::test]
async fn tracking_says_waiting_then_on_and_the_webhook_check_finds_the_triggers() {
    let t = TestServer::start().await;
    let first = tracking_of(&t).await;
    assert_eq!(first["status"], "waiting", "{first}");
    // Events of types the server does not read prove nothing about its own triggers.
    let typing = json!({"id": hex_id(), "type": "conversation:typing", "payload": {}});
    post(&t, &envelope(vec![typing])).await;
    assert_eq!(tracking_of(&t).await["status"], "waiting");
    eventually("the webhook check ran", || async {
        tracking_of(&t).await["webhook"]["status"] == "configured"
    })
    .await;
    let (event, message, _) = generated(event_type::DELIVERY_USER, false);
    post(&t, &envelope(vec![event])).await;
    let status = t
        .ok("get_delivery_status", json!({"messageId": message}))
        .await;
    assert_eq!(status["tracking"]["status"], "on", "{status}");
    assert!(status["tracking"]["lastEventAt"].is_string(), "{status}");
    let ready: Value = reqwest::get(format!("http://{}/readyz", t.server.addr))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["tracking"]["status"], "on", "{ready}");
    assert_eq!(
        ready["tracking"]["webhook"]["status"], "configured",
        "{ready}"
    );
}

#[tokio::test]
async fn a_webhook_without_the_triggers_is_reported_missing() {
    let http = HttpOptions {
        webhook_check: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let t = TestServer::start_full(SupervisorSettings::default(), http, None, |_| {}).await;
    // Narrow the server's webhook to one trigger, through the API as an admin would.
    let hooks = t
        .sim
        .get(&crate::support::TestSim::app(
            "/integrations?filter[types]=custom",
        ))
        .await;
    let (integration, hook) = hooks.body["integrations"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|i| {
            let hook = i["webhooks"]
                .as_array()?
                .iter()
                .find(|h| h["secret"] == SECRET)?;
            Some((
                i["id"].as_str()?.to_owned(),
                hook["id"].as_str()?.to_owned(),
            ))
        })
        .expect("the server's webhook");
    let r = t
        .sim
        .patch(
            &crate::support::TestSim::app(&format!("/integrations/{integration}/webhooks/{hook}")),
            json!({"triggers": ["conversation:message"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    eventually("the check reports the missing triggers", || async {
        tracking_of(&t).await["webhook"]["status"] == "missing"
    })
    .await;
    // Events that do arrive do not hide the triggers that will not.
    let (event, _, _) = generated(event_type::MESSAGE, false);
    post(&t, &envelope(vec![event])).await;
    let tracking = tracking_of(&t).await;
    assert_eq!(tracking["status"], "on", "{tracking}");
    assert!(
        tracking["message"]
            .as_str()
            .is_some_and(|m| m.contains("missingTriggers")),
        "{tracking}"
    );
    let all_but_messages: Vec<&str> = event_type::READ_BY_SERVER
        .iter()
        .copied()
        .filter(|t| *t != event_type::MESSAGE)
        .collect();
    assert_eq!(
        tracking["webhook"]["missingTriggers"],
        json!(all_but_messages),
        "{tracking}"
    );
}

/// A server on the demo simulator, with its configuration changed by `tweak`.
async fn serve_changed(
    tweak: impl FnOnce(&mut zendesk_messaging_mcp::config::Config),
) -> (
    crate::support::TestSim,
    zendesk_messaging_mcp::server::RunningServer,
) {
    use zendesk_messaging_mcp::server;
    crate::support::init_tracing();
    let sim = crate::support::TestSim::demo().await;
    let mut config = server::simulator_config(&sim.base).expect("config");
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = server::serve_with(
        listener,
        &config,
        SupervisorSettings::default(),
        HttpOptions::default(),
    )
    .await
    .expect("serve");
    (sim, running)
}

#[tokio::test]
async fn without_a_webhook_secret_tracking_is_off_and_nothing_claims_all_is_well() {
    let (_sim, running) = serve_changed(|c| c.webhook_secret = None).await;
    let client = TestServer::connect(&running, Default::default()).await;
    let call = |tool: &'static str, args: Value| {
        let client = &client;
        async move {
            let r = client
                .call_tool(
                    rmcp::model::CallToolRequestParams::new(tool)
                        .with_arguments(args.as_object().cloned().unwrap_or_default()),
                )
                .await
                .expect("call");
            crate::mcp_support::structured(tool, &r)
        }
    };
    let status = call("get_delivery_status", json!({"messageId": hex_id()})).await;
    assert_eq!(status["state"], "untracked", "{status}");
    assert_eq!(status["tracking"]["status"], "off", "{status}");
    let failures = call("list_delivery_failures", json!({})).await;
    assert_eq!(failures["tracking"]["status"], "off", "{failures}");
    assert!(
        failures["tracking"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("SUNCO_WEBHOOK_SECRET")),
        "{failures}"
    );
    // Without webhooks there is no index: a list without a user says so, never "none".
    let r = client
        .call_tool(rmcp::model::CallToolRequestParams::new(
            "list_conversations",
        ))
        .await
        .expect("call");
    let e = crate::mcp_support::tool_error("list_conversations", &r);
    assert_eq!(e["field"], "userId", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("SUNCO_WEBHOOK_SECRET")),
        "{e}"
    );
    let _ = client.cancel().await;
    running.shutdown().await;
}

#[tokio::test]
async fn an_integration_key_cannot_see_webhooks_and_says_unknown() {
    use zendesk_messaging_mcp::simulator::seed;
    let (_sim, running) = serve_changed(|config| {
        config.key_id = seed::INTEGRATION_KEY_ID.to_owned();
        config.key_secret =
            zendesk_messaging_mcp::secret::Secret::new(seed::INTEGRATION_KEY_SECRET);
        config.scope = zendesk_messaging_mcp::sunco::auth::Scope::Integration;
    })
    .await;
    let url = format!("http://{}/readyz", running.addr);
    eventually("the check answered", || async {
        let ready: Value = reqwest::get(&url)
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        ready["tracking"]["webhook"]["status"] == "unknown"
    })
    .await;
    running.shutdown().await;
}

#[tokio::test]
async fn the_frameworks_own_refusals_are_json_errors_too() {
    let t = TestServer::start().await;
    let base = format!("http://{}", t.server.addr);
    let http = reqwest::Client::new();
    let cases = [
        http.get(t.server.webhook_url()).send().await.expect("get"),
        http.post(t.server.webhook_url())
            .header("X-API-Key", SECRET)
            .body(vec![b' '; 2 * 1024 * 1024])
            .send()
            .await
            .expect("post"),
        http.get(format!("{base}/nowhere"))
            .send()
            .await
            .expect("get"),
    ];
    for (r, status) in cases.into_iter().zip([405, 413, 404]) {
        assert_eq!(r.status().as_u16(), status);
        let body: Value = r.json().await.expect("a JSON error body");
        assert_eq!(body["error"], "invalid_argument", "{body}");
        assert!(body["message"].is_string(), "{body}");
    }
}
