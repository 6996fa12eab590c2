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
    for name in [
        "text",
        "carousel",
        "file",
        "form",
        "image",
        "list",
        "location",
        "whatsappTemplate",
    ] {
        let example = spec().example(name);
        assert!(example.is_object(), "the spec has no example {name}");
        let problems = spec().check_request("POST", &path, &example);
        assert!(
            problems.is_empty(),
            "the spec's own example {name} fails its schema here: {problems:?}"
        );
        let r = sim.post(&path, example.clone()).await;
        assert_eq!(r.status, 201, "{name}: {:?}", r.body);
        let sent = &r.body["messages"][0]["content"];
        assert_eq!(sent["type"], example["content"]["type"], "{name}");
    }
}

/// Every operation the simulator serves, by the spec's path templates.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/v2/apps/{appId}/conversations"),
    ("POST", "/v2/apps/{appId}/conversations"),
    ("GET", "/v2/apps/{appId}/conversations/{conversationId}"),
    ("PATCH", "/v2/apps/{appId}/conversations/{conversationId}"),
    ("DELETE", "/v2/apps/{appId}/conversations/{conversationId}"),
    (
        "GET",
        "/v2/apps/{appId}/conversations/{conversationId}/participants",
    ),
    (
        "GET",
        "/v2/apps/{appId}/conversations/{conversationId}/messages",
    ),
    (
        "POST",
        "/v2/apps/{appId}/conversations/{conversationId}/messages",
    ),
    (
        "DELETE",
        "/v2/apps/{appId}/conversations/{conversationId}/messages",
    ),
    (
        "DELETE",
        "/v2/apps/{appId}/conversations/{conversationId}/messages/{messageId}",
    ),
    (
        "POST",
        "/v2/apps/{appId}/conversations/{conversationId}/passControl",
    ),
    (
        "POST",
        "/v2/apps/{appId}/conversations/{conversationId}/offerControl",
    ),
    (
        "POST",
        "/v2/apps/{appId}/conversations/{conversationId}/acceptControl",
    ),
    (
        "POST",
        "/v2/apps/{appId}/conversations/{conversationId}/releaseControl",
    ),
    ("GET", "/v2/apps/{appId}/users"),
    ("POST", "/v2/apps/{appId}/users"),
    ("GET", "/v2/apps/{appId}/users/{userIdOrExternalId}"),
    ("PATCH", "/v2/apps/{appId}/users/{userIdOrExternalId}"),
    ("DELETE", "/v2/apps/{appId}/users/{userIdOrExternalId}"),
    ("GET", "/v2/apps/{appId}/switchboards"),
    ("POST", "/v2/apps/{appId}/switchboards"),
    ("PATCH", "/v2/apps/{appId}/switchboards/{switchboardId}"),
    ("DELETE", "/v2/apps/{appId}/switchboards/{switchboardId}"),
    (
        "GET",
        "/v2/apps/{appId}/switchboards/{switchboardId}/switchboardIntegrations",
    ),
    (
        "POST",
        "/v2/apps/{appId}/switchboards/{switchboardId}/switchboardIntegrations",
    ),
    (
        "PATCH",
        "/v2/apps/{appId}/switchboards/{switchboardId}/switchboardIntegrations/{switchboardIntegrationId}",
    ),
    (
        "DELETE",
        "/v2/apps/{appId}/switchboards/{switchboardId}/switchboardIntegrations/{switchboardIntegrationId}",
    ),
    ("GET", "/v2/apps/{appId}/integrations"),
    ("GET", "/v2/apps/{appId}/integrations/{integrationId}"),
    (
        "GET",
        "/v2/apps/{appId}/integrations/{integrationId}/webhooks",
    ),
    (
        "POST",
        "/v2/apps/{appId}/integrations/{integrationId}/webhooks",
    ),
    (
        "GET",
        "/v2/apps/{appId}/integrations/{integrationId}/webhooks/{webhookId}",
    ),
    (
        "PATCH",
        "/v2/apps/{appId}/integrations/{integrationId}/webhooks/{webhookId}",
    ),
    (
        "DELETE",
        "/v2/apps/{appId}/integrations/{integrationId}/webhooks/{webhookId}",
    ),
];

#[tokio::test]
async fn every_operation_exists_in_the_spec_and_requires_credentials() {
    let sim = TestSim::demo().await;
    let id = "5f748c1a2b5315fc007e7977";
    for (method, template) in OPERATIONS {
        let (matched, _) = spec()
            .operation(method, template)
            .unwrap_or_else(|| panic!("{method} {template} is not in the spec"));
        assert_eq!(&matched, template);
        let path = template
            .replace("{appId}", super::support::APP)
            .replace(['{', '}'], "");
        let path = [
            "conversationId",
            "messageId",
            "userIdOrExternalId",
            "switchboardId",
            "switchboardIntegrationId",
            "integrationId",
            "webhookId",
        ]
        .iter()
        .fold(path, |p, name| p.replace(name, id));
        let body = (*method != "GET" && *method != "DELETE").then(|| json!({}));
        let r = sim
            .call(super::support::Auth::None, method, &path, body)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (401, "unauthorized"),
            "{method} {template}"
        );
        let route = format!("{method} {template}");
        assert_eq!(
            sim.count(&route, "401").await,
            1,
            "{route} is served by its own route"
        );
    }
}

/// The checker itself must catch what it exists to catch, or the other tests prove nothing.
#[test]
fn the_spec_checker_rejects_invented_missing_and_mistyped_fields() {
    let s = spec();
    let conv = "/v2/apps/a/conversations/c";
    let good = json!({"conversation": {"id": "c", "type": "personal", "isDefault": true, "createdAt": "2020-01-01T00:00:00.000Z"}});
    assert!(s.check_response("GET", conv, 200, &good).is_ok());
    let cases = [
        (
            json!({"conversation": {"id": "c", "type": "personal", "colour": "red"}}),
            "colour",
        ),
        (
            json!({"conversation": {"id": "c", "type": "group"}}),
            "not one of",
        ),
        (
            json!({"conversation": {"id": 5, "type": "personal"}}),
            "expected string",
        ),
        (
            json!({"conversation": {"id": "c", "type": "personal", "activeSwitchboardIntegration": {"id": "x", "nickname": "y"}}}),
            "nickname",
        ),
    ];
    for (body, needle) in cases {
        let e = s.check_response("GET", conv, 200, &body).unwrap_err();
        assert!(e.contains(needle), "{needle}: {e}");
    }
    let msgs = "/v2/apps/a/conversations/c/messages";
    let message = |content: serde_json::Value, author: serde_json::Value| json!({"messages": [{"id": "m", "received": "2020-01-01T00:00:00.000Z", "author": author, "content": content, "source": {"type": "api"}}]});
    let ok = message(
        json!({"type": "text", "text": "hi"}),
        json!({"type": "business"}),
    );
    assert!(s.check_response("POST", msgs, 201, &ok).is_ok());
    for (body, needle) in [
        (
            message(
                json!({"type": "text", "markdownText": "x"}),
                json!({"type": "business"}),
            ),
            "writeOnly",
        ),
        (
            message(
                json!({"type": "text", "text": "x"}),
                json!({"type": "business", "userExternalId": "u"}),
            ),
            "writeOnly",
        ),
        (
            message(json!({"type": "image"}), json!({"type": "business"})),
            "mediaUrl",
        ),
        (
            message(
                json!({"type": "carousel", "items": [{"title": "t", "actions": [{"type": "reply", "text": "a", "payload": "b"}]}]}),
                json!({"type": "business"}),
            ),
            "allowed variants",
        ),
        (
            message(json!({"type": "hologram"}), json!({"type": "business"})),
            "allowed variants",
        ),
    ] {
        let e = s.check_response("POST", msgs, 201, &body).unwrap_err();
        assert!(e.contains(needle), "{needle}: {e}");
    }
    // Errors must have the errorResponse shape; only a 400 may carry several.
    assert!(
        s.check_response("GET", conv, 404, &json!({"message": "nope"}))
            .is_err()
    );
    let two = json!({"errors": [{"code": "a", "title": "b"}, {"code": "c", "title": "d"}]});
    assert!(s.check_response("GET", conv, 404, &two).is_err());
    assert!(
        s.check_response("POST", "/v2/apps/a/users", 400, &two)
            .is_ok()
    );
    // Webhook envelopes: events are checked against the schema their type names.
    let hook = |payload: serde_json::Value| json!({"app": {"id": "a"}, "webhook": {"id": "w", "version": "v2"}, "events": [{"id": "e", "type": "conversation:message:delivery:failure", "createdAt": "2020-01-01T00:00:00.000Z", "payload": payload}]});
    assert!(s.check_webhook(&hook(json!({"message": {"id": "m"}, "isFinalEvent": true, "error": {"code": "x", "message": "y"}}))).is_empty());
    assert!(
        !s.check_webhook(&hook(
            json!({"message": {"id": "m"}, "isFinalEvent": "yes"})
        ))
        .is_empty()
    );
    assert!(!s.check_webhook(&hook(json!({"messageId": "m"}))).is_empty());
}
