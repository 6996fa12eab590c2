//! The simulator agrees with the spec's own examples: every request example of the endpoints it
//! serves is accepted, and what comes back matches the response schemas (checked in `call`).

use serde_json::json;

use super::spec::spec;
use super::support::TestSim;

#[tokio::test]
async fn the_specs_message_examples_are_accepted() {
    let sim = TestSim::demo().await;
    // demo-user-04 is on WhatsApp, which can receive the template example too.
    let conv = sim.conversation_of("demo-user-04").await;
    let path = TestSim::app(&format!("/conversations/{conv}/messages"));
    for name in ["text", "carousel", "file", "form", "image", "list", "location", "whatsappTemplate"] {
        let example = spec().example(name);
        assert!(example.is_object(), "the spec has no example {name}");
        let problems = spec().check_request("POST", &path, &example);
        assert!(problems.is_empty(), "the spec's own example {name} fails its schema here: {problems:?}");
        let r = sim.post(&path, example.clone()).await;
        assert_eq!(r.status, 201, "{name}: {:?}", r.body);
        let sent = &r.body["messages"][0]["content"];
        assert_eq!(sent["type"], example["content"]["type"], "{name}");
    }
}

#[tokio::test]
async fn the_specs_user_conversation_and_switchboard_examples_are_accepted() {
    let sim = TestSim::demo().await;
    let doc = spec().doc();
    let body_example = |path: &str, method: &str| {
        let ex = &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["examples"];
        ex.as_object()
            .and_then(|m| m.values().next())
            .map(|v| {
                let r = v["$ref"].as_str().map(|r| r.rsplit('/').next().unwrap_or_default().to_owned());
                match r {
                    Some(name) => spec().example(&name),
                    None => v["value"].clone(),
                }
            })
            .unwrap_or(json!(null))
    };
    let user = body_example("/v2/apps/{appId}/users", "post");
    assert!(user.is_object(), "CreateUser has a request example");
    let r = sim.post(&TestSim::app("/users"), user).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let update = body_example("/v2/apps/{appId}/users/{userIdOrExternalId}", "patch");
    if update.is_object() {
        let r = sim.patch(&TestSim::app("/users/demo-user-01"), update).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let conv = body_example("/v2/apps/{appId}/conversations", "post");
    if conv.is_object() {
        // The example names its own user; make that user exist first.
        let mut conv = conv.clone();
        conv["participants"] = json!([{"userExternalId": "demo-user-10", "subscribeSDKClient": false}]);
        let r = sim.post(&TestSim::app("/conversations"), conv).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
}
