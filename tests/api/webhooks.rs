//! Outbound webhooks: the envelope the spec describes, `X-API-Key`, several events in one POST,
//! delivery events per channel, and SunCo's retry rules.

use serde_json::{Value, json};

use super::spec::spec;
use super::support::{Receiver, TestSim, with_webhooks};

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn message_and_delivery_events_arrive_with_the_secret_in_one_post() {
    let rx = Receiver::start().await;
    let sim = TestSim::start(with_webhooks(&rx.url)).await;
    let conv = sim.conversation_of("demo-user-01").await;
    let r = sim
        .post(&TestSim::app(&format!("/conversations/{conv}/messages")), json!({"author": {"type": "business"}, "content": {"type": "text", "text": "Your parcel is on its way"}}))
        .await;
    let message_id = r.body["messages"][0]["id"].clone();
    let (posts, _) = rx.until(|ev| ev.len() >= 3).await;
    let (headers, envelope) = &posts[0];
    assert_eq!(headers["x-api-key"], "sim-webhook-secret");
    assert_eq!(posts.len(), 1, "events queued together share one POST");
    let problems = spec().check_webhook(envelope);
    assert!(problems.is_empty(), "{problems:#?}\n{envelope:#}");
    assert_eq!(envelope["app"]["id"], super::support::APP);
    assert_eq!(envelope["webhook"]["version"], "v2");
    let events = envelope["events"].as_array().unwrap();
    assert_eq!(
        types(events),
        [
            "conversation:message",
            "conversation:message:delivery:channel",
            "conversation:message:delivery:user"
        ]
    );
    assert_eq!(events[0]["payload"]["message"]["id"], message_id);
    assert_eq!(
        events[0]["payload"]["message"]["content"]["text"],
        "Your parcel is on its way"
    );
    let user_event = &events[2]["payload"];
    assert_eq!(user_event["message"], json!({"id": message_id}));
    assert_eq!(user_event["destination"]["type"], "web");
    assert_eq!(user_event["isFinalEvent"], true);
    assert_eq!(user_event["user"]["externalId"], "demo-user-01");
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids.len(), 3, "event ids are unique");
}

#[tokio::test]
async fn a_form_fails_on_messenger_but_reaches_web() {
    let rx = Receiver::start().await;
    let sim = TestSim::start(with_webhooks(&rx.url)).await;
    let form = json!({"author": {"type": "business"}, "content": {"type": "form", "fields": [{"type": "email", "name": "email", "label": "Your email?"}]}});
    // demo-user-03 is on messenger only.
    let conv = sim.conversation_of("demo-user-03").await;
    sim.post(
        &TestSim::app(&format!("/conversations/{conv}/messages")),
        form.clone(),
    )
    .await;
    let (posts, events) = rx.until(|ev| ev.len() >= 2).await;
    assert_eq!(
        types(&events),
        [
            "conversation:message",
            "conversation:message:delivery:failure"
        ]
    );
    let failure = &events[1]["payload"];
    assert_eq!(failure["destination"]["type"], "messenger");
    assert_eq!(
        failure["error"],
        json!({"code": "uncategorized_error", "message": "Unsupported message type `form`"})
    );
    assert_eq!(failure["isFinalEvent"], true);
    for (_, body) in &posts {
        assert!(spec().check_webhook(body).is_empty());
    }
    // demo-user-02's primary client is iOS, which renders forms.
    let conv = sim.conversation_of("demo-user-02").await;
    sim.post(
        &TestSim::app(&format!("/conversations/{conv}/messages")),
        form,
    )
    .await;
    let (_, events) = rx.until(|ev| ev.len() >= 3).await;
    assert_eq!(events[2]["payload"]["destination"]["type"], "ios");
    assert_eq!(events[2]["type"], "conversation:message:delivery:user");
}

#[tokio::test]
async fn switchboard_events_carry_the_conversation_after_the_change() {
    let rx = Receiver::start().await;
    let sim = TestSim::start(with_webhooks(&rx.url)).await;
    let conv = sim.conversation_of("demo-user-01").await;
    sim.post(
        &TestSim::app(&format!("/conversations/{conv}/passControl")),
        json!({"switchboardIntegration": "next", "metadata": {"why": "billing"}}),
    )
    .await;
    let (_, body) = rx.next().await;
    assert!(spec().check_webhook(&body).is_empty());
    let e = &body["events"][0];
    assert_eq!(e["type"], "switchboard:passControl");
    assert_eq!(
        e["payload"]["conversation"]["activeSwitchboardIntegration"]["name"],
        "zd-agentWorkspace"
    );
    assert_eq!(e["payload"]["metadata"], json!({"why": "billing"}));
}

async fn attempts(sim: &TestSim, n: usize) -> Vec<Value> {
    // Attempts are recorded as they happen; wait for the expected count through the receiver.
    let list = sim.admin("GET", "/_sim/webhooks", None).await;
    let a = list["attempts"].as_array().cloned().unwrap_or_default();
    assert!(a.len() >= n, "expected {n} attempts, got {a:#?}");
    a
}

#[tokio::test]
async fn failed_posts_are_retried_up_to_five_times_but_not_after_a_400() {
    let rx = Receiver::start().await;
    let sim = TestSim::start(with_webhooks(&rx.url)).await;
    let conv = sim.conversation_of("demo-user-01").await;
    let path = TestSim::app(&format!("/conversations/{conv}/passControl"));
    // 500, 503, then accepted: three attempts of the same envelope.
    rx.answer_with(&[500, 503]);
    sim.post(&path, json!({"switchboardIntegration": "next"}))
        .await;
    let first = rx.next().await.1;
    let second = rx.next().await.1;
    let third = rx.next().await.1;
    assert_eq!(first, second);
    assert_eq!(second, third);
    let a = attempts(&sim, 3).await;
    let statuses: Vec<Value> = a.iter().map(|x| x["status"].clone()).collect();
    assert_eq!(statuses, vec![json!(500), json!(503), json!(200)]);
    assert_eq!(a[2]["willRetry"], false);

    // A 400 is final. (A reset builds a new world, with new ids.)
    sim.admin("POST", "/_sim/reset", None).await;
    let conv = sim.conversation_of("demo-user-01").await;
    let path = TestSim::app(&format!("/conversations/{conv}/passControl"));
    rx.answer_with(&[400]);
    sim.post(&path, json!({"switchboardIntegration": "next"}))
        .await;
    rx.next().await;
    // The next event proves the 400 was not retried: only one attempt precedes it.
    sim.post(&path, json!({"switchboardIntegration": "bot"}))
        .await;
    let (_, after) = rx.next().await;
    assert_eq!(
        after["events"][0]["payload"]["conversation"]["activeSwitchboardIntegration"]["name"],
        "bot"
    );
    let a = attempts(&sim, 2).await;
    assert_eq!(a[0]["status"], 400);
    assert_eq!(a[0]["willRetry"], false);

    // Always failing: five attempts, then it gives up.
    sim.admin("POST", "/_sim/reset", None).await;
    let conv = sim.conversation_of("demo-user-01").await;
    let path = TestSim::app(&format!("/conversations/{conv}/passControl"));
    rx.answer_with(&[503, 503, 503, 503, 503]);
    sim.post(&path, json!({"switchboardIntegration": "next"}))
        .await;
    for _ in 0..5 {
        rx.next().await;
    }
    sim.post(&path, json!({"switchboardIntegration": "bot"}))
        .await;
    rx.next().await;
    let a = attempts(&sim, 6).await;
    let failing: Vec<&Value> = a.iter().filter(|x| x["status"] == 503).collect();
    assert_eq!(failing.len(), 5);
    assert_eq!(failing[4]["attempt"], 5);
    assert_eq!(failing[4]["willRetry"], false);
}

#[tokio::test]
async fn creating_and_deleting_a_conversation_emits_create_and_remove_as_the_spec_describes() {
    let rx = Receiver::start().await;
    let sim = TestSim::start(with_webhooks(&rx.url)).await;
    // Subscribe the app's webhook to the conversation lifecycle.
    let custom = sim.get(&TestSim::app("/integrations?types=custom")).await;
    let integration = custom.body["integrations"][0]["id"]
        .as_str()
        .expect("the custom integration")
        .to_owned();
    let hooks = sim
        .get(&TestSim::app(&format!(
            "/integrations/{integration}/webhooks"
        )))
        .await;
    let hook = hooks.body["webhooks"][0]["id"]
        .as_str()
        .expect("webhook")
        .to_owned();
    let updated = sim
        .patch(
            &TestSim::app(&format!("/integrations/{integration}/webhooks/{hook}")),
            json!({"triggers": ["conversation:create", "conversation:remove"]}),
        )
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    let created = sim
        .post(
            &TestSim::app("/conversations"),
            json!({"type": "personal", "participants": [{"userExternalId": "demo-user-05"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let conv = created.body["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deleted = sim
        .delete(&TestSim::app(&format!("/conversations/{conv}")))
        .await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    let (posts, events) = rx.until(|ev| ev.len() >= 2).await;
    for (_, envelope) in &posts {
        let problems = spec().check_webhook(envelope);
        assert!(problems.is_empty(), "{problems:#?}\n{envelope:#}");
    }
    assert_eq!(
        types(&events),
        ["conversation:create", "conversation:remove"]
    );
    assert_eq!(events[0]["payload"]["conversation"]["id"], conv.as_str());
    assert_eq!(events[0]["payload"]["creationReason"], "none");
    assert_eq!(events[0]["payload"]["user"]["externalId"], "demo-user-05");
    assert_eq!(events[1]["payload"]["conversation"]["id"], conv.as_str());
}
