//! The MCP server end to end: an MCP client over Streamable HTTP, the server, the simulator
//! upstream (with its webhooks wired to the server), and the simulator's own record of what it
//! received.

use std::time::Duration;

use serde_json::{Value, json};

use zendesk_messaging_mcp::actors::{ActorKind, SupervisorSettings};

use crate::mcp_support::{TestServer, post_stateless, text_of, tool_error};

#[tokio::test]
async fn tools_list_matches_the_snapshot() {
    let t = TestServer::start().await;
    let tools = t.client.list_all_tools().await.expect("tools/list");
    let mut listed: Vec<Value> = tools
        .iter()
        .map(|tool| serde_json::to_value(tool).expect("tool json"))
        .collect();
    listed.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    for tool in &listed {
        let name = tool["name"].as_str().unwrap_or_default();
        assert_eq!(
            tool["inputSchema"]["additionalProperties"],
            json!(false),
            "{name}: input schema must refuse unknown fields"
        );
        assert_eq!(
            tool["outputSchema"]["type"], "object",
            "{name}: output schema"
        );
        let a = &tool["annotations"];
        for hint in [
            "title",
            "readOnlyHint",
            "destructiveHint",
            "idempotentHint",
            "openWorldHint",
        ] {
            assert!(!a[hint].is_null(), "{name}: annotation {hint} missing");
        }
        let creates = matches!(name, "send_message" | "create_user" | "create_conversation");
        if creates {
            assert_eq!(a["idempotentHint"], false, "{name} is not idempotent");
            assert_eq!(a["readOnlyHint"], false, "{name} writes");
        }
        if name.starts_with("list_") || name.starts_with("get_") {
            assert_eq!(a["readOnlyHint"], true, "{name} only reads");
        }
    }
    let names: Vec<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "accept_control",
            "claim_conversation",
            "create_conversation",
            "create_user",
            "find_users",
            "get_conversation",
            "get_delivery_status",
            "get_integration",
            "get_message",
            "get_switchboard_status",
            "get_user",
            "list_conversations",
            "list_delivery_failures",
            "list_integrations",
            "list_messages",
            "list_switchboards",
            "offer_control",
            "pass_control",
            "release_control",
            "release_conversation",
            "send_activity",
            "send_message",
            "update_conversation",
            "update_user",
        ]
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/snapshots/tools_list.json");
    let now = serde_json::to_string_pretty(&Value::Array(listed)).expect("json") + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &now).expect("write snapshot");
    }
    let before = std::fs::read_to_string(&path).expect(
        "tests/api/snapshots/tools_list.json is missing: run with UPDATE_SNAPSHOTS=1 and review it",
    );
    assert!(
        before == now,
        "tools/list changed: what an LLM sees is different. Review the change, then run with UPDATE_SNAPSHOTS=1 to accept it"
    );
}

#[tokio::test]
async fn server_instructions_teach_the_workflow() {
    let t = TestServer::start().await;
    let info = t.client.peer_info().expect("server info");
    let text = info.instructions.clone().unwrap_or_default();
    for needle in [
        "create_user",
        "list_conversations",
        "get_switchboard_status",
        "get_delivery_status",
        "retryAfterSeconds",
        "claim_conversation",
        "superseded",
    ] {
        assert!(
            text.contains(needle),
            "instructions should mention {needle}"
        );
    }
}

/// A new user (`external_id`) and a personal conversation for it; returns both ids.
pub(crate) async fn user_and_conversation(t: &TestServer, external_id: &str) -> (String, String) {
    let user = t
        .ok("create_user", json!({"externalId": external_id}))
        .await;
    let conversation = t
        .ok(
            "create_conversation",
            json!({"participants": [{"userExternalId": external_id}]}),
        )
        .await;
    (
        user["user"]["id"].as_str().expect("user id").to_owned(),
        conversation["conversation"]["id"]
            .as_str()
            .expect("id")
            .to_owned(),
    )
}

#[tokio::test]
async fn users_are_created_found_by_id_or_external_id_and_updated() {
    let t = TestServer::start().await;
    // Users.
    let created = t
        .ok(
            "create_user",
            json!({"externalId": "mcp-user-1", "profile": {"givenName": "Ada", "email": "ada@example.org"}}),
        )
        .await;
    let user_id = created["user"]["id"].as_str().expect("user id").to_owned();
    let got = t.ok("get_user", json!({"userId": "mcp-user-1"})).await;
    assert_eq!(got["user"]["id"], user_id.as_str(), "externalId resolves");
    let got = t.ok("get_user", json!({"userId": user_id})).await;
    assert_eq!(got["user"]["externalId"], "mcp-user-1", "id resolves");
    let updated = t
        .ok(
            "update_user",
            json!({"userId": "mcp-user-1", "profile": {"surname": "Lovelace"}}),
        )
        .await;
    assert_eq!(updated["user"]["profile"]["surname"], "Lovelace");
}

#[tokio::test]
async fn conversations_are_created_listed_by_id_or_external_id_and_fetched() {
    let t = TestServer::start().await;
    let created = t
        .ok("create_user", json!({"externalId": "mcp-user-1"}))
        .await;
    let user_id = created["user"]["id"].as_str().expect("user id").to_owned();
    // Conversations.
    let conv = t
        .ok(
            "create_conversation",
            json!({"participants": [{"userExternalId": "mcp-user-1"}], "displayName": "Help"}),
        )
        .await;
    let conv_id = conv["conversation"]["id"].as_str().expect("id").to_owned();
    assert_eq!(conv["conversation"]["type"], "personal");
    let listed = t.ok("list_conversations", json!({"userId": user_id})).await;
    assert!(
        listed["conversations"]
            .as_array()
            .expect("list")
            .iter()
            .any(|c| c["id"] == conv_id.as_str())
    );
    assert_eq!(listed["hasMore"], false);
    let by_external = t
        .ok("list_conversations", json!({"userId": "mcp-user-1"}))
        .await;
    assert_eq!(
        by_external["conversations"], listed["conversations"],
        "userId accepts the externalId too"
    );
    let got = t
        .ok("get_conversation", json!({"conversationId": conv_id}))
        .await;
    assert_eq!(got["conversation"]["displayName"], "Help");
}

#[tokio::test]
async fn every_content_type_is_sent_then_listed_and_found() {
    let t = TestServer::start().await;
    let (_, conv_id) = user_and_conversation(&t, "mcp-user-messages").await;
    // Messages of every kind the tool describes.
    for content in [
        json!({"type": "text", "text": "Hello"}),
        json!({"type": "image", "mediaUrl": "https://example.org/a.png"}),
        json!({"type": "file", "mediaUrl": "https://example.org/a.pdf"}),
        json!({"type": "carousel", "items": [{"title": "Tacos", "actions": [
            {"type": "postback", "text": "Select", "payload": "TACOS"}]}]}),
        json!({"type": "list", "items": [{"title": "Tacos", "actions": [
            {"type": "postback", "text": "Select", "payload": "TACOS"}]}]}),
        json!({"type": "location", "coordinates": {"lat": 45.5, "long": -73.5}}),
        json!({"type": "form", "fields": [{"type": "text", "name": "n", "label": "Name"}]}),
    ] {
        let sent = t
            .ok(
                "send_message",
                json!({"conversationId": conv_id, "content": content}),
            )
            .await;
        assert_eq!(sent["messages"][0]["content"]["type"], content["type"]);
        assert_eq!(sent["messages"][0]["author"]["type"], "business");
    }
    let page = t
        .ok(
            "list_messages",
            json!({"conversationId": conv_id, "limit": 3}),
        )
        .await;
    assert_eq!(page["messages"].as_array().expect("messages").len(), 3);
    assert_eq!(
        page["messages"][2]["content"]["type"], "form",
        "newest last"
    );
    assert_eq!(page["hasMore"], true);
    let first = page["messages"][0]["id"].as_str().expect("id").to_owned();
    let found = t
        .ok(
            "get_message",
            json!({"conversationId": conv_id, "messageId": first}),
        )
        .await;
    assert_eq!(found["message"]["id"], first.as_str());
    assert_eq!(
        found["foundBy"], "seen",
        "the server sent it, so it knows it"
    );
}

#[tokio::test]
async fn the_switchboard_protocol_runs_offer_accept_release_and_pass() {
    let t = TestServer::start().await;
    let (_, conv_id) = user_and_conversation(&t, "mcp-user-switchboard").await;
    // Switchboard.
    let boards = t.ok("list_switchboards", json!({})).await;
    let integrations = boards["switchboards"][0]["switchboardIntegrations"]
        .as_array()
        .expect("integrations");
    assert!(integrations.iter().any(|i| i["name"] == "bot"));
    let status = t
        .ok("get_switchboard_status", json!({"conversationId": conv_id}))
        .await;
    assert_eq!(status["switchboardEnabled"], true);
    let offered = t
        .ok(
            "offer_control",
            json!({"conversationId": conv_id, "switchboardIntegration": "zd-agentWorkspace"}),
        )
        .await;
    assert_eq!(offered["status"]["pending"]["name"], "zd-agentWorkspace");
    let accepted = t
        .ok("accept_control", json!({"conversationId": conv_id}))
        .await;
    assert_eq!(accepted["status"]["active"]["name"], "zd-agentWorkspace");
    let released = t
        .ok("release_control", json!({"conversationId": conv_id}))
        .await;
    assert_eq!(released["action"], "releaseControl");
    let passed = t
        .ok(
            "pass_control",
            json!({"conversationId": conv_id, "switchboardIntegration": "next"}),
        )
        .await;
    assert_eq!(passed["status"]["active"]["name"], "zd-agentWorkspace");
}

#[tokio::test]
async fn integrations_page_filter_and_never_show_secrets() {
    let t = TestServer::start().await;
    // Integrations: no secrets, working cursor.
    let first_page = t.ok("list_integrations", json!({"limit": 2})).await;
    assert_eq!(first_page["hasMore"], true);
    let cursor = first_page["nextCursor"].as_str().expect("cursor");
    let second = t
        .ok("list_integrations", json!({"limit": 2, "cursor": cursor}))
        .await;
    assert_ne!(
        first_page["integrations"][0]["id"],
        second["integrations"][0]["id"]
    );
    let some = second["integrations"][0]["id"].as_str().expect("id");
    let one = t
        .ok("get_integration", json!({"integrationId": some}))
        .await;
    assert_eq!(one["integration"]["id"], some);
    let all = t.ok("list_integrations", json!({"limit": 100})).await;
    let text = all.to_string();
    for secret in ["sim-webhook-secret", "pageAccessToken", "secret"] {
        assert!(
            !text.contains(secret),
            "integration secrets must not be shown: {secret}"
        );
    }
    let whatsapp = t
        .ok("list_integrations", json!({"types": ["whatsapp"]}))
        .await;
    assert!(
        whatsapp["integrations"]
            .as_array()
            .expect("list")
            .iter()
            .all(|i| i["type"] == "whatsapp")
    );
}

#[tokio::test]
async fn the_delivery_tools_answer_for_a_sent_message() {
    let t = TestServer::start().await;
    let (_, conv_id) = user_and_conversation(&t, "mcp-user-delivery").await;
    // Delivery tracking (the webhook arrives asynchronously).
    let sent = t
        .ok(
            "send_message",
            json!({"conversationId": conv_id, "content": {"type": "text", "text": "tracked"}}),
        )
        .await;
    let mid = sent["messages"][0]["id"].as_str().expect("id").to_owned();
    let status = t.ok("get_delivery_status", json!({"messageId": mid})).await;
    assert!(status["state"].is_string());
    assert_ne!(status["state"], "notSeen", "{status}");
    // An id this server never saw (mistyped, say): not "wait", but "check the id".
    let unseen = t
        .ok(
            "get_delivery_status",
            json!({"messageId": "5f0c1e2d3b4a5968778899fe"}),
        )
        .await;
    assert_eq!(unseen["state"], "notSeen", "{unseen}");
    let failures = t.ok("list_delivery_failures", json!({})).await;
    assert!(failures["failures"].is_array());
}

#[tokio::test]
async fn every_tool_fails_cleanly_on_a_bad_id() {
    let t = TestServer::start().await;
    let missing = "5f0c1e2d3b4a5968778899ff";
    let bad_id_calls = [
        (
            "list_conversations",
            json!({"userExternalId": "nobody-at-all"}),
        ),
        (
            "create_conversation",
            json!({"participants": [{"userExternalId": "nobody-at-all"}]}),
        ),
        ("get_conversation", json!({"conversationId": missing})),
        ("list_messages", json!({"conversationId": missing})),
        (
            "send_message",
            json!({"conversationId": missing, "content": {"type": "text", "text": "x"}}),
        ),
        (
            "get_message",
            json!({"conversationId": missing, "messageId": missing}),
        ),
        ("get_user", json!({"userId": "nobody-at-all"})),
        (
            "update_user",
            json!({"userId": "nobody-at-all", "profile": {"givenName": "X"}}),
        ),
        ("get_switchboard_status", json!({"conversationId": missing})),
        (
            "pass_control",
            json!({"conversationId": missing, "switchboardIntegration": "bot"}),
        ),
        (
            "offer_control",
            json!({"conversationId": missing, "switchboardIntegration": "bot"}),
        ),
        ("accept_control", json!({"conversationId": missing})),
        ("release_control", json!({"conversationId": missing})),
        ("get_integration", json!({"integrationId": missing})),
        ("list_integrations", json!({"cursor": "not-a-cursor"})),
        ("create_user", json!({"externalId": "demo-user-01"})),
        ("get_delivery_status", json!({"messageId": "not-an-id"})),
        (
            "list_delivery_failures",
            json!({"conversationId": "not-an-id"}),
        ),
    ];
    for (tool, args) in bad_id_calls {
        let e = t.err(tool, args).await;
        let message = e["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{tool}: {e}"));
        assert!(!message.is_empty(), "{tool}: the error says what happened");
        assert!(e["error"].is_string(), "{tool}: the error has a class: {e}");
    }
    let e = t
        .err("get_conversation", json!({"conversationId": missing}))
        .await;
    assert_eq!(e["status"], 404);
    assert_eq!(e["code"], "conversation_not_found");
    // One class for every id that names nothing, with the argument it is about.
    assert_eq!(e["error"], "not_found", "{e}");
    assert_eq!(e["field"], "conversationId", "{e}");
    let e = t
        .err("get_user", json!({"userId": "nobody-by-this-name"}))
        .await;
    assert_eq!(
        (&e["error"], &e["field"]),
        (&json!("not_found"), &json!("userId")),
        "{e}"
    );
    let conv = t.conversation_of("demo-user-01").await;
    let e = t
        .err(
            "get_message",
            json!({"conversationId": conv, "messageId": "5f0c1e2d3b4a5968778899ff"}),
        )
        .await;
    assert_eq!(
        (&e["error"], &e["field"]),
        (&json!("not_found"), &json!("messageId")),
        "{e}"
    );
    let e = t
        .err("create_user", json!({"externalId": "demo-user-01"}))
        .await;
    assert_eq!(e["status"], 409, "{e}");
}

#[tokio::test]
async fn every_tool_fails_cleanly_on_bad_arguments_and_nothing_reaches_the_upstream() {
    let t = TestServer::start().await;
    // Bad arguments: unknown fields, wrong types, missing fields, bad content. None reaches
    // the upstream.
    let posts_before = t
        .sim
        .count(
            "POST /v2/apps/{appId}/conversations/{conversationId}/messages",
            "201",
        )
        .await;
    let conv = t.conversation_of("demo-user-02").await;
    let bad_args = [
        ("list_conversations", json!({"cursor": "abc"})),
        (
            "list_conversations",
            json!({"userId": "a", "userExternalId": "b"}),
        ),
        ("get_conversation", json!({"conversationId": "../../users"})),
        ("get_conversation", json!({"id": "x"})),
        ("list_messages", json!({"conversationId": conv, "limit": 0})),
        (
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text"}}),
        ),
        (
            "send_message",
            json!({"conversationId": conv, "content": {"type": "hologram"}}),
        ),
        (
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": "x"}, "author": {"type": "user"}}),
        ),
        (
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": "x"}, "metadata": {"nested": {"a": 1}}}),
        ),
        (
            "send_message",
            json!({"conversationId": conv, "content": {"type": "formResponse", "fields": []}}),
        ),
        (
            "get_message",
            json!({"conversationId": conv, "messageId": "5f0c1e2d3b4a5968778899ff", "maxPages": 99}),
        ),
        ("create_user", json!({})),
        ("update_user", json!({"userId": "demo-user-01"})),
        ("create_conversation", json!({"participants": []})),
        ("pass_control", json!({"conversationId": conv})),
        ("list_integrations", json!({"types": ["web&x=1"]})),
        ("list_delivery_failures", json!({"limit": 1000})),
        ("get_delivery_status", json!({})),
        ("get_switchboard_status", json!({"conversationId": 5})),
        (
            "accept_control",
            json!({"conversationId": conv, "extra": 1}),
        ),
        (
            "offer_control",
            json!({"conversationId": conv, "switchboardIntegration": ""}),
        ),
        ("release_control", json!({})),
        ("get_user", json!({"userId": ""})),
        ("get_integration", json!({"integrationId": "x/../y"})),
        ("list_switchboards", json!({"x": 1})),
    ];
    for (tool, args) in bad_args {
        let r = t.call(tool, args.clone()).await;
        let e = tool_error(tool, &r);
        assert!(!text_of(&r).is_empty(), "{tool} {args}: {e}");
    }
    let e = t
        .err(
            "send_message",
            json!({"conversationId": conv, "content": {"type": "carousel", "items": [{"title": "A", "actions": [{"type": "link", "text": "Go", "uri": "nope"}]}]}}),
        )
        .await;
    assert_eq!(e["field"], "content.items[0].actions[0].uri", "{e}");
    assert_eq!(
        t.sim
            .count(
                "POST /v2/apps/{appId}/conversations/{conversationId}/messages",
                "201"
            )
            .await,
        posts_before,
        "no bad message reached the upstream"
    );
    assert_eq!(
        t.sim
            .count(
                "POST /v2/apps/{appId}/conversations/{conversationId}/messages",
                "400"
            )
            .await,
        0,
        "the upstream never had to refuse a message"
    );
}

#[tokio::test]
async fn a_form_to_a_channel_that_cannot_render_it_is_reported_through_the_webhook() {
    let t = TestServer::start().await;
    let (conv, mid) = t.send_undeliverable_form().await;
    let reads_before = t.sim.admin("GET", "/_sim/stats", None).await["counts"].clone();
    let status = t.delivery_state(&mid, "failed").await;
    assert_eq!(status["conversationId"], conv.as_str());
    assert_eq!(status["failure"]["channel"], "messenger");
    assert!(status["failure"]["error"]["code"].is_string(), "{status}");
    let failures = t
        .ok("list_delivery_failures", json!({"conversationId": conv}))
        .await;
    let first = &failures["failures"][0];
    assert_eq!(first["messageId"], mid.as_str());
    assert_eq!(first["channel"], "messenger");
    // What to do: the channel cannot render a form, so send it in another form.
    assert_eq!(first["nextStep"]["action"], "change_content", "{first}");
    assert_eq!(first["nextStep"]["retryable"], false, "{first}");
    assert_eq!(status["nextStep"], first["nextStep"], "{status}");
    assert_eq!(failures["hasMore"], false, "{failures}");
    let has_it = |v: &Value| {
        v["failures"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["messageId"] == mid.as_str()))
    };
    for (filter, kept) in [
        (json!({"channel": "Messenger"}), true),
        (json!({"channel": "whatsapp"}), false),
        (json!({"code": first["code"]}), true),
        (json!({"code": "other_code"}), false),
        (json!({"createdAfter": "2000-01-01T00:00:00Z"}), true),
        (json!({"createdAfter": "2999-01-01T00:00:00Z"}), false),
        (json!({"createdBefore": "2000-01-01T00:00:00Z"}), false),
    ] {
        let got = t.ok("list_delivery_failures", filter.clone()).await;
        assert_eq!(has_it(&got), kept, "{filter}: {got}");
    }
    let e = t
        .err("list_delivery_failures", json!({"createdBefore": "soon"}))
        .await;
    assert_eq!(e["field"], "createdBefore", "{e}");
    let app_wide = t.ok("list_delivery_failures", json!({})).await;
    assert!(
        app_wide["failures"]
            .as_array()
            .expect("list")
            .iter()
            .any(|f| f["messageId"] == mid.as_str())
    );
    // Nothing was asked of the upstream while the status was read.
    let reads_after = t.sim.admin("GET", "/_sim/stats", None).await["counts"].clone();
    assert_eq!(
        reads_before, reads_after,
        "the delivery tools never poll the upstream"
    );
}

#[tokio::test]
async fn pass_control_checks_the_target_before_anything_is_written() {
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-01").await;
    let e = t
        .err(
            "pass_control",
            json!({"conversationId": conv, "switchboardIntegration": "humans"}),
        )
        .await;
    assert_eq!(e["error"], "invalid_target");
    let names: Vec<&str> = e["validTargets"]
        .as_array()
        .expect("valid targets listed")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        names.contains(&"bot") && names.contains(&"zd-agentWorkspace"),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap_or_default().contains("humans"));
    // An ambiguous type is refused too.
    let before = t.sim.admin("GET", "/_sim/stats", None).await;
    assert!(
        before["counts"]
            .as_object()
            .expect("counts")
            .keys()
            .all(|k| !k.ends_with("passControl")),
        "no control call reached the upstream: {}",
        before["counts"]
    );

    let status = t
        .ok("get_switchboard_status", json!({"conversationId": conv}))
        .await;
    let target = if status["active"]["name"] == "bot" {
        "zd-agentWorkspace"
    } else {
        "bot"
    };
    t.ok(
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": target, "metadata": {"reason": "test"}}),
    )
    .await;
    let after = t
        .ok("get_switchboard_status", json!({"conversationId": conv}))
        .await;
    assert_eq!(after["active"]["name"], target);
    assert_eq!(
        t.sim
            .count(
                "POST /v2/apps/{appId}/conversations/{conversationId}/passControl",
                "200"
            )
            .await,
        1
    );
}

#[tokio::test]
async fn a_stale_switchboard_cache_is_refreshed_once_before_a_target_is_refused() {
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-02").await;
    // Warm the cache, then add an integration behind the server's back.
    t.ok("list_switchboards", json!({})).await;
    let loads = t.server.actors.switchboard.loads().await.expect("loads");
    let boards = t
        .sim
        .get(&crate::support::TestSim::app("/switchboards"))
        .await;
    let sb = boards.body["switchboards"][0]["id"]
        .as_str()
        .expect("sb")
        .to_owned();
    let integrations = t
        .sim
        .get(&crate::support::TestSim::app(
            "/integrations?filter[types]=custom",
        ))
        .await;
    let custom = integrations.body["integrations"][0]["id"]
        .as_str()
        .expect("custom")
        .to_owned();
    let created = t
        .sim
        .post(
            &crate::support::TestSim::app(&format!("/switchboards/{sb}/switchboardIntegrations")),
            json!({"name": "triage-bot", "integrationId": custom, "deliverStandbyEvents": false}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let passed = t
        .ok(
            "pass_control",
            json!({"conversationId": conv, "switchboardIntegration": "triage-bot"}),
        )
        .await;
    assert_eq!(passed["status"]["active"]["name"], "triage-bot");
    assert_eq!(
        t.server.actors.switchboard.loads().await.expect("loads"),
        loads + 1,
        "one refresh"
    );
}

#[tokio::test]
async fn get_message_finds_a_message_more_than_100_back_with_progress() {
    let t = TestServer::start().await;
    // demo-user-01's conversation holds 250 messages.
    let conv = t.conversation_of("demo-user-01").await;
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    let oldest = loop {
        let mut args = json!({"conversationId": conv, "limit": 100});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let page = t.ok("list_messages", args).await;
        let msgs = page["messages"].as_array().expect("messages");
        seen += msgs.len();
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break msgs[0]["id"].as_str().expect("id").to_owned(),
        }
    };
    assert_eq!(
        seen, 250,
        "the cursor walks the whole history, no gaps, no repeats"
    );
    let r = t
        .call_with(
            "get_message",
            json!({"conversationId": conv, "messageId": oldest}),
            Some("scan-1"),
        )
        .await;
    let found = crate::mcp_support::structured("get_message", &r);
    assert_eq!(found["message"]["id"], oldest.as_str());
    assert_eq!(found["foundBy"], "scan");
    assert_eq!(found["pagesScanned"], 3);
    let progress = t.recorder.progress.lock().expect("progress").clone();
    assert!(
        progress.len() >= 3,
        "a progress notification per page scanned, got {}",
        progress.len()
    );
    // The server remembers what it found: the second time, no scan.
    let again = t
        .ok(
            "get_message",
            json!({"conversationId": conv, "messageId": oldest, "maxPages": 1}),
        )
        .await;
    assert_eq!(again["foundBy"], "seen");
    // A bound too small says how to go further.
    let e = t
        .err(
            "get_message",
            json!({"conversationId": conv, "messageId": "5f0c1e2d3b4a5968778899ff", "maxPages": 1}),
        )
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("maxPages"),
        "{e}"
    );
}

#[tokio::test]
async fn each_actor_stopped_with_calls_in_flight_is_restarted_and_later_calls_succeed() {
    let t = TestServer::start_with(SupervisorSettings::default(), |c| {
        c.faults.latency_ms = 100;
    })
    .await;
    let conv = t.conversation_of("demo-user-02").await;
    for (n, kind) in ActorKind::ALL.into_iter().enumerate() {
        let calls = (0..8).map(|i| {
            let tool = match i % 4 {
                0 => ("list_messages", json!({"conversationId": conv, "limit": 5})),
                1 => ("get_switchboard_status", json!({"conversationId": conv})),
                2 => ("list_delivery_failures", json!({})),
                _ => ("get_conversation", json!({"conversationId": conv})),
            };
            let t = &t;
            async move { t.call(tool.0, tool.1).await }
        });
        let in_flight = futures::future::join_all(calls);
        let kill = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            t.server.actors.kill(kind);
        };
        let (results, ()) = tokio::join!(in_flight, kill);
        for r in &results {
            // Each call ends (the harness panics on a hang) with a result or a clean tool error.
            if r.is_error == Some(true) {
                let e = tool_error("in flight", r);
                assert!(e["message"].is_string(), "{kind:?}: {e}");
            }
        }
        let restarts = t.server.actors.restarts().await.expect("restarts");
        assert_eq!(restarts, n as u64 + 1, "{kind:?} was restarted");
        // The next calls succeed.
        t.ok("list_messages", json!({"conversationId": conv, "limit": 1}))
            .await;
        t.ok("get_switchboard_status", json!({"conversationId": conv}))
            .await;
        t.ok("list_delivery_failures", json!({})).await;
    }
}

#[tokio::test]
async fn the_webhook_route_refuses_a_wrong_key_and_malformed_envelopes() {
    let t = TestServer::start().await;
    let http = reqwest::Client::new();
    let url = t.server.webhook_url();
    let r = http
        .post(&url)
        .header("X-API-Key", "wrong")
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .header("X-API-Key", "sim-webhook-secret")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    crate::support::eventually("ready once the credentials were accepted", || async {
        let r = http
            .get(format!("http://{}/readyz", t.server.addr))
            .send()
            .await
            .expect("readyz");
        r.status() == 200
    })
    .await;
    let health = http
        .get(format!("http://{}/healthz", t.server.addr))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
}

/// A stateless (2026-07-28) tool call as a plain POST; returns the content type and the body.
async fn stateless(url: &str, tool: &str, args: Value, meta: Value) -> (String, String) {
    let body = crate::mcp_support::stateless_request(
        "tools/call",
        json!({"name": tool, "arguments": args, "_meta": meta}),
    );
    let a = post_stateless(url, "tools/call", Some(tool), &[], body).await;
    (a.content_type().to_owned(), a.body)
}

#[tokio::test]
async fn stateless_calls_answer_plain_json_and_stream_only_for_progress() {
    let t = TestServer::start().await;
    let url = t.server.mcp_url();
    let conv = t.conversation_of("demo-user-01").await;
    let (ct, body) = stateless(
        &url,
        "get_conversation",
        json!({"conversationId": conv}),
        json!({}),
    )
    .await;
    assert!(ct.starts_with("application/json"), "{ct}");
    assert!(body.contains("\"isError\":false"), "{body}");
    // 250 messages: the oldest is three pages back, and the progress token asks for a stream.
    let oldest = {
        let first = t.ok("list_messages", json!({"conversationId": conv})).await;
        let cursor = first["nextCursor"].as_str().expect("cursor").to_owned();
        let second = t
            .ok(
                "list_messages",
                json!({"conversationId": conv, "cursor": cursor}),
            )
            .await;
        let cursor = second["nextCursor"].as_str().expect("cursor").to_owned();
        let third = t
            .ok(
                "list_messages",
                json!({"conversationId": conv, "cursor": cursor}),
            )
            .await;
        third["messages"][0]["id"].as_str().expect("id").to_owned()
    };
    let (ct, body) = stateless(
        &url,
        "get_message",
        json!({"conversationId": conv, "messageId": oldest}),
        json!({"progressToken": "scan"}),
    )
    .await;
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    assert_eq!(body.matches("notifications/progress").count(), 3, "{body}");
    assert!(body.contains("\"foundBy\":\"scan\""), "{body}");
}

/// A plain stateless call is answered without a service of its own; with an `Origin` (allowed
/// here) the same request goes through the transport's service. Both answer alike, for results,
/// tool errors, protocol errors and arguments sent as JSON text.
#[tokio::test]
async fn a_plain_stateless_call_answers_as_the_transport_service_does() {
    let t = TestServer::start().await;
    let url = t.server.mcp_url();
    let origin = url.trim_end_matches("/mcp").to_owned();
    let conv = t.conversation_of("demo-user-01").await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let cases = [
        // A result.
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params":
            {"name": "get_conversation", "arguments": {"conversationId": conv}, "_meta": meta}}),
        // A string id, arguments as JSON text.
        json!({"jsonrpc": "2.0", "id": "a-1", "method": "tools/call", "params":
            {"name": "get_conversation", "arguments": json!({"conversationId": conv}).to_string(),
             "_meta": meta}}),
        // A tool error naming the field.
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params":
            {"name": "get_conversation", "arguments": {"conversationID": conv}, "_meta": meta}}),
        // No arguments at all.
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params":
            {"name": "list_switchboards", "_meta": meta}}),
        // A protocol error: the client capabilities are missing.
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params":
            {"name": "list_switchboards", "_meta":
                {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}),
        // Client capabilities that do not decode count as missing.
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params":
            {"name": "list_switchboards", "_meta":
                {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                 "io.modelcontextprotocol/clientCapabilities": {"roots": {"listChanged": "yes"}}}}}),
        // A request that also carries a result is no request.
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "result": {}, "params":
            {"name": "list_switchboards", "_meta": meta}}),
    ];
    for case in cases {
        let tool = case["params"]["name"].as_str().expect("name").to_owned();
        let plain = post_stateless(&url, "tools/call", Some(&tool), &[], case.to_string()).await;
        let served = post_stateless(
            &url,
            "tools/call",
            Some(&tool),
            &[("origin", &origin)],
            case.to_string(),
        )
        .await;
        assert_eq!(
            plain.status, served.status,
            "{case}: {} / {}",
            plain.body, served.body
        );
        assert_eq!(plain.content_type(), served.content_type(), "{case}");
        if plain.content_type().starts_with("application/json") {
            let (a, b) = (plain.json(), served.json());
            assert_eq!(a, b, "{case}");
            assert_eq!(a["id"], case["id"], "{case}");
        } else {
            assert_eq!(plain.body, served.body, "{case}");
        }
    }
}

#[tokio::test]
async fn find_users_finds_by_email_identity_and_refuses_what_is_no_address() {
    let t = TestServer::start().await;
    // demo-user-02 has an email identity; demo-user-01 has the address only in its profile.
    let found = t
        .ok("find_users", json!({"email": " Ben.Okafor@example.org "}))
        .await;
    let ids: Vec<&str> = found["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["externalId"].as_str())
        .collect();
    assert_eq!(ids, ["demo-user-02"], "{found}");
    assert_eq!(found["email"], "Ben.Okafor@example.org");
    let none = t
        .ok("find_users", json!({"email": "ana.silva@example.org"}))
        .await;
    assert_eq!(
        none["users"],
        json!([]),
        "profile.email is not matched: {none}"
    );
    for bad in ["", "ben.okafor", "@example.org", "a b@example.org"] {
        let e = t.err("find_users", json!({"email": bad})).await;
        assert_eq!(e["error"], "invalid_argument", "{bad}: {e}");
        assert_eq!(e["field"], "email", "{bad}: {e}");
    }
    assert_eq!(
        t.sim.count("GET /v2/apps/{appId}/users", "200").await,
        2,
        "refused addresses never went upstream"
    );
}

#[tokio::test]
async fn a_hand_over_summary_reaches_the_receiving_integration_in_the_metadata() {
    // The switchboard events go to a receiver of the test's own, which sees the metadata the
    // control call carried.
    let rx = crate::support::Receiver::start().await;
    let url = rx.url.clone();
    let t = TestServer::start_with(SupervisorSettings::default(), move |c| {
        c.webhook_url = Some(url)
    })
    .await;
    let (_, conv) = user_and_conversation(&t, "mcp-user-summary").await;
    let summary =
        "Asked for a refund of order 1234; the bot confirmed the order but cannot refund.";
    t.ok(
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "zd-agentWorkspace",
            "summary": summary, "metadata": {"orderId": "1234"}}),
    )
    .await;
    let (_, events) = rx
        .until(|ev| ev.iter().any(|e| e["type"] == "switchboard:passControl"))
        .await;
    let passed = events
        .iter()
        .find(|e| e["type"] == "switchboard:passControl")
        .expect("passControl");
    assert_eq!(passed["payload"]["metadata"]["mcp.summary"], summary);
    assert_eq!(passed["payload"]["metadata"]["orderId"], "1234");
    // Refused before anything is sent: blank, given twice, too long with the metadata.
    for (args, field) in [
        (json!({"summary": "  "}), "summary"),
        (
            json!({"summary": "x", "metadata": {"mcp.summary": "y"}}),
            "metadata.mcp.summary",
        ),
        (json!({"summary": "x".repeat(4100)}), "summary"),
    ] {
        let mut call = json!({"conversationId": conv, "switchboardIntegration": "next"});
        call.as_object_mut()
            .expect("object")
            .extend(args.as_object().expect("object").clone());
        let e = t.err("offer_control", call).await;
        assert_eq!(e["error"], "invalid_argument", "{e}");
        assert_eq!(e["field"], field, "{e}");
    }
    let offers = t
        .sim
        .count(
            "POST /v2/apps/{appId}/conversations/{conversationId}/offerControl",
            "200",
        )
        .await;
    assert_eq!(offers, 0, "nothing was offered");
}

#[tokio::test]
async fn without_a_user_list_conversations_lists_what_the_webhooks_told_of() {
    let t = TestServer::start().await;
    let (user, conv) = user_and_conversation(&t, "mcp-user-index").await;
    let indexed = |list: &Value| -> Option<Value> {
        list["conversations"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == conv.as_str())
            .cloned()
    };
    // conversation:create reached the server.
    let found = std::sync::Mutex::new(Value::Null);
    crate::support::eventually("the new conversation is indexed", || async {
        let list = t.ok("list_conversations", json!({})).await;
        let hit = indexed(&list);
        *found.lock().expect("lock") = list;
        hit.is_some()
    })
    .await;
    let list = found.into_inner().expect("lock");
    assert_eq!(list["source"], "index", "{list}");
    assert!(list.get("indexed").is_none(), "one list: {list}");
    assert!(list["indexReachesBack"].is_string(), "{list}");
    assert_eq!(list["tracking"]["status"], "on", "{list}");
    let entry = indexed(&list).expect("indexed");
    assert!(entry["createdAt"].is_string(), "{entry}");
    assert_eq!(entry["awaitingReply"], false, "{entry}");
    // Names beside the ids: the switchboard integration the filters take by name.
    assert_eq!(
        entry["activeSwitchboardIntegration"]["name"], "bot",
        "{entry}"
    );
    assert!(
        entry["activeSwitchboardIntegration"]["id"].is_string(),
        "{entry}"
    );
    // The customer writes: it awaits a reply, newest first.
    let wrote = t
        .sim
        .post(
            &crate::support::TestSim::app(&format!("/conversations/{conv}/messages")),
            json!({"author": {"type": "user", "userId": user},
                "content": {"type": "text", "text": "Where is my parcel?"}}),
        )
        .await;
    assert_eq!(wrote.status, 201, "{:?}", wrote.body);
    crate::support::eventually("the customer's message is indexed", || async {
        let list = t.ok("list_conversations", json!({"limit": 1})).await;
        list["conversations"][0]["id"] == conv.as_str()
            && list["conversations"][0]["awaitingReply"] == true
    })
    .await;
    // The business answers: it no longer awaits one.
    t.ok(
        "send_message",
        json!({"conversationId": conv, "content": {"type": "text", "text": "Tomorrow."}}),
    )
    .await;
    crate::support::eventually("the answer is indexed", || async {
        let list = t.ok("list_conversations", json!({})).await;
        indexed(&list).is_some_and(|e| e["awaitingReply"] == false)
    })
    .await;
    for (args, field) in [
        (json!({"cursor": "abc"}), "cursor"),
        (
            json!({"userId": user, "userExternalId": "mcp-user-index"}),
            "userId",
        ),
    ] {
        let e = t.err("list_conversations", args).await;
        assert_eq!(e["field"], field, "{e}");
    }
}

#[tokio::test]
async fn list_conversations_filters_by_control_time_and_reply_with_and_without_a_user() {
    let t = TestServer::start().await;
    let (user, waiting) = user_and_conversation(&t, "mcp-user-filter-a").await;
    let (_, quiet) = user_and_conversation(&t, "mcp-user-filter-b").await;
    let wrote = t
        .sim
        .post(
            &crate::support::TestSim::app(&format!("/conversations/{waiting}/messages")),
            json!({"author": {"type": "user", "userId": user},
                "content": {"type": "text", "text": "Can a person help me?"}}),
        )
        .await;
    assert_eq!(wrote.status, 201, "{:?}", wrote.body);
    let ids = |list: &Value| -> Vec<String> {
        list["conversations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    crate::support::eventually("the customer's message is indexed", || async {
        let list = t
            .ok("list_conversations", json!({"awaitingReply": true}))
            .await;
        ids(&list).contains(&waiting)
    })
    .await;
    let list = t
        .ok("list_conversations", json!({"awaitingReply": "true"}))
        .await;
    assert!(!ids(&list).contains(&quiet), "{list}");
    assert_eq!(list["filtered"]["applied"], json!({"awaitingReply": true}));
    assert!(list["filtered"]["excluded"].as_u64() >= Some(1), "{list}");
    // Who controls it: the bot, by name, until it hands over.
    let by_bot = t
        .ok(
            "list_conversations",
            json!({"activeSwitchboardIntegration": "bot"}),
        )
        .await;
    assert!(ids(&by_bot).contains(&waiting), "{by_bot}");
    t.ok(
        "pass_control",
        json!({"conversationId": waiting, "switchboardIntegration": "zd-agentWorkspace"}),
    )
    .await;
    crate::support::eventually("the hand-over is indexed", || async {
        let list = t
            .ok(
                "list_conversations",
                json!({"activeSwitchboardIntegration": "zd:agentWorkspace", "awaitingReply": true}),
            )
            .await;
        ids(&list) == [waiting.clone()]
    })
    .await;
    // With a user: the API's page, filtered; the index decides awaitingReply.
    let mine = t
        .ok(
            "list_conversations",
            json!({"userId": user, "awaitingReply": true, "activeSwitchboardIntegration": "zd-agentWorkspace"}),
        )
        .await;
    assert_eq!(mine["source"], "api", "{mine}");
    assert_eq!(ids(&mine), vec![waiting.clone()], "{mine}");
    assert_eq!(mine["tracking"]["status"], "on", "{mine}");
    assert!(mine["indexReachesBack"].is_string(), "{mine}");
    let future = t
        .ok(
            "list_conversations",
            json!({"userId": user, "updatedAfter": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(ids(&future), Vec::<String>::new(), "{future}");
    assert_eq!(future["filtered"]["excluded"], 1, "{future}");
    let created = t
        .ok(
            "list_conversations",
            json!({"createdAfter": "2000-01-01T00:00:00Z", "createdBefore": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert!(ids(&created).contains(&quiet), "{created}");
    for (args, field) in [
        (json!({"createdAfter": "yesterday"}), "createdAfter"),
        (
            json!({"pendingSwitchboardIntegration": "nobody"}),
            "pendingSwitchboardIntegration",
        ),
        (json!({"userId": user, "channel": " "}), "channel"),
    ] {
        let e = t.err("list_conversations", args).await;
        assert_eq!(e["error"], "invalid_argument", "{e}");
        assert_eq!(e["field"], field, "{e}");
    }
}

#[tokio::test]
async fn prompts_guide_a_hand_over_and_resources_show_routing_and_channels() {
    let t = TestServer::start().await;
    let (_, conv) = user_and_conversation(&t, "mcp-user-prompts").await;
    let prompts = t.client.list_prompts(None).await.expect("prompts/list");
    let names: Vec<&str> = prompts.prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["handoff_to_agent", "triage_failures"]);
    let mut args = serde_json::Map::new();
    args.insert("conversationId".into(), json!(conv));
    args.insert("switchboardIntegration".into(), json!("zd-agentWorkspace"));
    let prompt = t
        .client
        .get_prompt(
            rmcp::model::GetPromptRequestParams::new("handoff_to_agent").with_arguments(args),
        )
        .await
        .expect("prompts/get");
    let text = serde_json::to_value(&prompt.messages[0].content).expect("json");
    let text = text["text"].as_str().expect("text");
    for needed in [
        "get_switchboard_status",
        "pass_control",
        "summary",
        "not_in_control",
        conv.as_str(),
        "\"zd-agentWorkspace\"",
    ] {
        assert!(text.contains(needed), "{needed} missing from: {text}");
    }
    // A wrong argument is refused as invalid params, naming it.
    let mut bad = serde_json::Map::new();
    bad.insert("conversationId".into(), json!("nope"));
    let e = t
        .client
        .get_prompt(
            rmcp::model::GetPromptRequestParams::new("handoff_to_agent").with_arguments(bad),
        )
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("conversationId"), "{e}");
    // Resources: the routing picture and the channels, read live.
    let resources = t.client.list_resources(None).await.expect("resources/list");
    let uris: Vec<&str> = resources.resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris, ["sunco://switchboard", "sunco://integrations"]);
    let client = &t.client;
    let read = |uri: &'static str| async move {
        let r = client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(uri))
            .await
            .expect("resources/read");
        let rmcp::model::ResourceContents::TextResourceContents {
            text, mime_type, ..
        } = &r.contents[0]
        else {
            panic!("text contents expected");
        };
        assert_eq!(mime_type.as_deref(), Some("application/json"));
        serde_json::from_str::<Value>(text).expect("json")
    };
    let picture = read("sunco://switchboard").await;
    let names: Vec<&str> = picture["switchboardIntegrations"]
        .as_array()
        .expect("integrations")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"bot") && names.contains(&"zd-agentWorkspace"),
        "{picture}"
    );
    let channels = read("sunco://integrations").await;
    assert!(
        channels["integrations"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["type"] == "messenger")),
        "{channels}"
    );
    assert!(
        !channels.to_string().contains("secret"),
        "no secrets: {channels}"
    );
    let e = t
        .client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "sunco://nothing",
        ))
        .await
        .expect_err("unknown resource");
    assert!(e.to_string().contains("sunco://nothing"), "{e}");
}

#[tokio::test]
async fn the_index_keeps_its_configured_count_and_says_how_far_back_it_reaches() {
    let mut settings = SupervisorSettings::default();
    settings.tracker.conversations = 2;
    let t = TestServer::start_with(settings, |_| {}).await;
    let mut made = vec![];
    for n in 0..3 {
        made.push(
            user_and_conversation(&t, &format!("mcp-user-bound-{n}"))
                .await
                .1,
        );
        // Distinct activity times, so the oldest is the one forgotten.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    crate::support::eventually("the newest two are indexed", || async {
        let list = t.ok("list_conversations", json!({"limit": 100})).await;
        let ids: Vec<&str> = list["conversations"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["id"].as_str()).collect())
            .unwrap_or_default();
        // Complete since what the count bound forgot: no later than what it still holds.
        let reach = list["indexReachesBack"].as_str().unwrap_or("~");
        ids == [made[2].as_str(), made[1].as_str()]
            && reach
                <= list["conversations"][1]["lastActivityAt"]
                    .as_str()
                    .unwrap_or_default()
    })
    .await;
    // A page of one continues with what its answer says (the index takes no cursor).
    let first = t.ok("list_conversations", json!({"limit": 1})).await;
    assert_eq!(first["conversations"][0]["id"], made[2].as_str(), "{first}");
    assert_eq!(first["hasMore"], true, "{first}");
    let then = &first["continueWith"];
    assert_eq!(
        then["updatedBefore"], first["conversations"][0]["lastActivityAt"],
        "{first}"
    );
    let second = t
        .ok(
            "list_conversations",
            json!({"limit": 1, "updatedBefore": then["updatedBefore"]}),
        )
        .await;
    assert_eq!(
        second["conversations"][0]["id"],
        made[1].as_str(),
        "{second}"
    );
    assert_eq!(second["hasMore"], false, "{second}");
    assert!(second.get("continueWith").is_none(), "{second}");
    let refused = t
        .err("list_conversations", json!({"cursor": "x", "limit": 1}))
        .await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("continueWith")),
        "{refused}"
    );
}

#[tokio::test]
async fn update_conversation_changes_what_it_is_given_and_keeps_the_rest() {
    let t = TestServer::start().await;
    let (_, conv) = user_and_conversation(&t, "mcp-user-update-conv").await;
    let updated = t
        .ok(
            "update_conversation",
            json!({"conversationId": conv, "displayName": "Returns",
                "metadata": {"botStep": "asked_order", "attempts": 2}}),
        )
        .await;
    assert_eq!(
        updated["conversation"]["displayName"], "Returns",
        "{updated}"
    );
    // Another field alone: the metadata stays as it was.
    t.ok(
        "update_conversation",
        json!({"conversationId": conv, "description": "Parcel never came"}),
    )
    .await;
    let read = t
        .ok("get_conversation", json!({"conversationId": conv}))
        .await;
    let c = &read["conversation"];
    assert_eq!(
        c["metadata"],
        json!({"botStep": "asked_order", "attempts": 2}),
        "{read}"
    );
    assert_eq!(c["displayName"], "Returns", "{read}");
    assert_eq!(c["description"], "Parcel never came", "{read}");
    // Refusals name the field; nothing is sent for them.
    for (args, field) in [
        (json!({"conversationId": conv}), "metadata"),
        (
            json!({"conversationId": conv, "iconUrl": "ftp://x"}),
            "iconUrl",
        ),
        (
            json!({"conversationId": conv, "metadata": {"nested": {"no": 1}}}),
            "metadata.nested",
        ),
    ] {
        let e = t.err("update_conversation", args).await;
        assert_eq!(e["error"], "invalid_argument", "{e}");
        assert!(
            e["field"].as_str().is_some_and(|f| f.starts_with(field)),
            "{field}: {e}"
        );
    }
    let e = t
        .err(
            "update_conversation",
            json!({"conversationId": "0123456789abcdef01234567", "displayName": "x"}),
        )
        .await;
    assert_eq!(e["error"], "not_found", "{e}");
}
