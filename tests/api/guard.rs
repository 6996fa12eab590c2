//! The send guard (a bot never answers over a human agent) and dry runs (nothing sent), through
//! MCP over HTTP with tokens from a tokens file.

use serde_json::{Value, json};
use zendesk_messaging_mcp::actors::SupervisorSettings;
use zendesk_messaging_mcp::actors::delivery::{TrackingStatus, WebhookCheckStatus};

use crate::mcp::user_and_conversation;
use crate::mcp_support::{Recorder, TestServer, call_tool, structured, tool_error};

const POST_MESSAGE: &str = "POST /v2/apps/{appId}/conversations/{conversationId}/messages";
const GET_CONVERSATION: &str = "GET /v2/apps/{appId}/conversations/{conversationId}";
const BOT: &str = "guard-bot-token-0123456789";
const SUPERVISOR: &str = "guard-supervisor-token-0123456789";
const REHEARSAL: &str = "guard-rehearsal-token-0123456789";
const MISNAMED: &str = "guard-misnamed-token-0123456789";
const RELAY: &str = "guard-relay-token-0123456789";

/// A server whose tokens file binds `bot` to the bot integration, `supervisor` to it with the
/// right to override, and `rehearsal` to it in dry-run mode; the test client is `bot`.
async fn start() -> TestServer {
    start_checking(true).await
}

/// [`start`], with the periodic webhook check or without it (then the index is never known to
/// be current).
async fn start_checking(webhook_check: bool) -> TestServer {
    let access = crate::mcp_support::access_from_tokens_file(&format!(
        r#"
[[tokens]]
name = "bot"
token = "{BOT}"
switchboard_integration = "bot"

[[tokens]]
name = "supervisor"
token = "{SUPERVISOR}"
switchboard_integration = "bot"
allow_override = true

[[tokens]]
name = "rehearsal"
token = "{REHEARSAL}"
switchboard_integration = "bot"
mode = "dry-run"

[[tokens]]
name = "misnamed"
token = "{MISNAMED}"
switchboard_integration = "bott"

[[tokens]]
name = "relay"
token = "{RELAY}"
switchboard_integration = "bot"
allow_in_band_commands = true
"#
    ));
    let mut http = zendesk_messaging_mcp::server::HttpOptions {
        access: std::sync::Arc::new(access),
        ..Default::default()
    };
    if !webhook_check {
        http.webhook_check = None;
    }
    TestServer::start_full(SupervisorSettings::default(), http, Some(BOT), |_| {}).await
}

fn text(conv: &str, text: &str) -> Value {
    json!({"conversationId": conv, "content": {"type": "text", "text": text}})
}

#[tokio::test]
async fn a_bot_never_answers_over_a_human_agent_unless_its_token_may_override() {
    let t = start().await;
    let (_, conv) = user_and_conversation(&t, "guard-user-1").await;
    // The bot controls a new conversation: it may answer.
    t.ok("send_message", text(&conv, "Hello from the bot."))
        .await;
    t.ok(
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "zd-agentWorkspace",
            "summary": "Wants a refund."}),
    )
    .await;
    let sent = t.sim.count(POST_MESSAGE, "201").await;
    let refused = |e: &Value| {
        assert_eq!(e["error"], "not_in_control", "{e}");
        assert_eq!(
            e["activeSwitchboardIntegration"]["name"], "zd-agentWorkspace",
            "{e}"
        );
        assert_eq!(e["conversationId"], conv.as_str(), "{e}");
    };
    // Once the webhook check found every trigger subscribed and events arrive, the index
    // answers, without a read.
    crate::support::eventually("the webhook check finds every trigger", || async {
        t.server.actors.tracker.tracking().await.webhook.status == WebhookCheckStatus::Configured
    })
    .await;
    crate::support::eventually("events arrive", || async {
        t.server.actors.tracker.tracking().await.status == TrackingStatus::On
    })
    .await;
    let asked = t.sim.count(GET_CONVERSATION, "200").await;
    refused(&t.err("send_message", text(&conv, "Anything else?")).await);
    assert_eq!(
        t.sim.count(GET_CONVERSATION, "200").await,
        asked,
        "the index told who controls it"
    );
    // On the user's behalf is not a business message: the guard lets it through.
    let mut on_behalf = text(&conv, "I am still here.");
    on_behalf["author"] = json!({"type": "user", "userExternalId": "guard-user-1"});
    t.ok("send_message", on_behalf).await;
    // Overriding needs a token that may.
    let mut over = text(&conv, "Sorry to interrupt.");
    over["overrideControl"] = json!(true);
    let e = t.err("send_message", over.clone()).await;
    assert_eq!(e["field"], "overrideControl", "{e}");
    assert_eq!(
        t.sim.count(POST_MESSAGE, "201").await,
        sent + 1,
        "only the user's message was sent"
    );
    let supervisor = TestServer::connect_as(&t.server, Recorder::default(), Some(SUPERVISOR)).await;
    let r = call_tool(&supervisor, "send_message", over, None).await;
    assert_eq!(structured("send_message", &r)["replayed"], false);
    assert_eq!(t.sim.count(POST_MESSAGE, "201").await, sent + 2);
    // Control back to the bot: it may answer again.
    t.ok(
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "bot"}),
    )
    .await;
    crate::support::eventually("the bot is in control again", || async {
        t.call("send_message", text(&conv, "I am back."))
            .await
            .is_error
            != Some(true)
    })
    .await;
}

/// SunCo executes `%((switchboard:passControl:NAME))%` in a business message's text: the
/// simulator does too, so what the guard prevents shows as control moving.
#[tokio::test]
async fn commands_hidden_in_text_are_refused_unless_the_profile_allows_them() {
    let t = start().await;
    let (_, conv) = user_and_conversation(&t, "guard-user-commands").await;
    let sent = t.sim.count(POST_MESSAGE, "201").await;
    let command = "%((switchboard:passControl:zd-agentWorkspace))%";
    let in_action = json!({"type": "carousel", "items": [
        {"title": "Plans", "actions": [{"type": "postback", "text": "Basic", "payload": "basic"}]},
        {"title": "Help", "actions": [{"type": "reply", "text": format!("Talk {command}"), "payload": "h"}]}]});
    let cases = [
        (
            text(&conv, &format!("Sure, one moment. {command}")),
            "content.text",
        ),
        (
            json!({"conversationId": conv, "content": {"type": "text", "text": "ok",
            "markdownText": format!("**ok** %(( switchboard:releaseControl ))%")}}),
            "content.markdownText",
        ),
        (
            json!({"conversationId": conv, "content": in_action}),
            "content.items[1].actions[0].text",
        ),
        (
            json!({"conversationId": conv, "content": {"type": "list", "items": [
            {"title": "A", "description": command, "actions": [{"type": "postback", "text": "Pick", "payload": "a"}]}]}}),
            "content.items[0].description",
        ),
        (
            json!({"conversationId": conv, "content": {"type": "text", "text": "ok"},
            "metadata": {"note": command}}),
            "metadata.note",
        ),
        (
            json!({"conversationId": conv, "content": {"type": "text", "text": "ok"},
            "author": {"type": "business", "displayName": command}}),
            "author.displayName",
        ),
        (
            json!({"conversationId": conv, "content": {"type": "text", "text": "ok"},
            "idempotencyKey": command}),
            "idempotencyKey",
        ),
    ];
    for (args, field) in cases {
        let e = t.err("send_message", args).await;
        assert_eq!(e["error"], "invalid_argument", "{e}");
        assert_eq!(e["field"], field, "{e}");
        assert!(e.to_string().contains("pass_control"), "{e}");
    }
    assert_eq!(
        t.sim.count(POST_MESSAGE, "201").await,
        sent,
        "nothing was sent"
    );
    let active = |c: &Value| c["conversation"]["activeSwitchboardIntegration"]["name"].clone();
    let c = t
        .ok("get_conversation", json!({"conversationId": conv}))
        .await;
    assert_eq!(active(&c), "bot", "{c}");
    // A profile that may send in-band commands: sent, and SunCo moves control.
    let relay = TestServer::connect_as(&t.server, Recorder::default(), Some(RELAY)).await;
    let r = call_tool(&relay, "send_message", text(&conv, command), None).await;
    assert_eq!(structured("send_message", &r)["replayed"], false, "{r:?}");
    let c = t
        .ok("get_conversation", json!({"conversationId": conv}))
        .await;
    assert_eq!(active(&c), "zd-agentWorkspace", "{c}");
}

#[tokio::test]
async fn a_dry_run_validates_everything_answers_the_request_and_sends_nothing() {
    let t = start().await;
    let (_, conv) = user_and_conversation(&t, "guard-user-2").await;
    let rehearsal = TestServer::connect_as(&t.server, Recorder::default(), Some(REHEARSAL)).await;
    let before = t.sim.admin("GET", "/_sim/stats", None).await["counts"].clone();
    let mut keyed = text(&conv, "Your order shipped.");
    keyed["idempotencyKey"] = json!("dry-run-key-1");
    let r = call_tool(&rehearsal, "send_message", keyed.clone(), None).await;
    let dry = structured("send_message", &r);
    assert_eq!(dry["dryRun"], true, "{dry}");
    assert_eq!(dry["request"]["operation"], "PostMessage", "{dry}");
    assert_eq!(dry["request"]["method"], "POST", "{dry}");
    assert!(
        dry["request"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(&format!("/conversations/{conv}/messages"))),
        "{dry}"
    );
    assert_eq!(
        dry["request"]["body"]["content"]["text"],
        "Your order shipped."
    );
    assert_eq!(
        dry["request"]["body"]["metadata"]["mcp.idempotencyKey"],
        "dry-run-key-1"
    );
    let r = call_tool(
        &rehearsal,
        "create_user",
        json!({"externalId": "guard-never-created"}),
        None,
    )
    .await;
    assert_eq!(
        structured("create_user", &r)["request"]["operation"],
        "CreateUser"
    );
    let r = call_tool(
        &rehearsal,
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "zd-agentWorkspace", "summary": "Needs a person."}),
        None,
    )
    .await;
    let passed = structured("pass_control", &r);
    assert_eq!(
        passed["request"]["body"]["metadata"]["mcp.summary"],
        "Needs a person."
    );
    // Validation is complete: a bad target and bad content are refused as in a real call.
    let r = call_tool(
        &rehearsal,
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "nobody"}),
        None,
    )
    .await;
    assert_eq!(tool_error("pass_control", &r)["error"], "invalid_target");
    let r = call_tool(
        &rehearsal,
        "send_message",
        json!({"conversationId": conv, "content": {"type": "text"}}),
        None,
    )
    .await;
    assert_eq!(tool_error("send_message", &r)["error"], "invalid_argument");
    // Nothing was written upstream; reads went out as usual.
    let after = t.sim.admin("GET", "/_sim/stats", None).await["counts"].clone();
    for (route, outcomes) in after.as_object().expect("counts") {
        if route.starts_with("GET ") {
            continue;
        }
        assert_eq!(&before[route], outcomes, "{route} was called in a dry run");
    }
    let e = t
        .err("get_user", json!({"userId": "guard-never-created"}))
        .await;
    assert_eq!(e["status"], 404, "{e}");
    // No idempotency record was kept: the real send with the same key sends.
    let real = t.ok("send_message", keyed.clone()).await;
    assert_eq!(real["replayed"], false, "{real}");
    assert_eq!(
        real["messages"][0]["content"]["text"],
        "Your order shipped."
    );
    // The key is checked as a real call would: a repeat is the first result, another message
    // under it a conflict.
    let r = call_tool(&rehearsal, "send_message", keyed.clone(), None).await;
    let again = structured("send_message", &r);
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["messages"], real["messages"], "{again}");
    let mut other = keyed;
    other["content"]["text"] = json!("Something else.");
    let r = call_tool(&rehearsal, "send_message", other, None).await;
    assert_eq!(
        tool_error("send_message", &r)["error"],
        "idempotency_conflict"
    );
    // The send guard applies to a dry run as well.
    t.ok(
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "zd-agentWorkspace"}),
    )
    .await;
    let r = call_tool(&rehearsal, "send_message", text(&conv, "Hi"), None).await;
    assert_eq!(tool_error("send_message", &r)["error"], "not_in_control");
}

#[tokio::test]
async fn an_integration_the_switchboard_lacks_is_a_setting_to_fix_not_a_retry() {
    let t = start().await;
    let (_, conv) = user_and_conversation(&t, "guard-user-3").await;
    let misnamed = TestServer::connect_as(&t.server, Recorder::default(), Some(MISNAMED)).await;
    let r = call_tool(&misnamed, "send_message", text(&conv, "Hello"), None).await;
    let e = tool_error("send_message", &r);
    assert_eq!(e["error"], "invalid_target", "{e}");
    assert!(e["retryAfterSeconds"].is_null(), "no retry mends it: {e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"bott\"")),
        "{e}"
    );
    assert!(
        e["validTargets"]
            .as_array()
            .is_some_and(|v| v.iter().any(|t| t["name"] == "bot")),
        "{e}"
    );
}

#[tokio::test]
async fn without_a_verified_webhook_the_guard_asks_the_api_each_time() {
    let t = start_checking(false).await;
    let (_, conv) = user_and_conversation(&t, "guard-user-4").await;
    t.ok(
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "zd-agentWorkspace"}),
    )
    .await;
    for _ in 0..2 {
        let asked = t.sim.count(GET_CONVERSATION, "200").await;
        let e = t.err("send_message", text(&conv, "Hello?")).await;
        assert_eq!(e["error"], "not_in_control", "{e}");
        assert_eq!(
            t.sim.count(GET_CONVERSATION, "200").await,
            asked + 1,
            "the webhook is not known to send every control event: the API is asked"
        );
    }
}

#[tokio::test]
async fn without_a_named_integration_a_caller_speaks_for_the_default_one_unless_the_guard_is_off() {
    // No tokens, no --switchboard-integration: the quick start's set-up.
    let t = TestServer::start().await;
    let (_, conv) = user_and_conversation(&t, "guard-default-1").await;
    t.ok("send_message", text(&conv, "Hello from the bot."))
        .await;
    t.ok(
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "zd-agentWorkspace"}),
    )
    .await;
    let e = t.err("send_message", text(&conv, "Still the bot.")).await;
    assert_eq!(e["error"], "not_in_control", "{e}");
    assert_eq!(
        e["activeSwitchboardIntegration"]["integrationType"],
        "zd:agentWorkspace"
    );
    let sent = t.sim.count(POST_MESSAGE, "201").await;
    assert_eq!(sent, 1, "only the first message was sent");

    // --no-send-guard: the operator's explicit choice.
    let mut access = zendesk_messaging_mcp::access::AccessPolicy::default();
    access.no_send_guard = true;
    let http = zendesk_messaging_mcp::server::HttpOptions {
        access: std::sync::Arc::new(access),
        ..Default::default()
    };
    let open = TestServer::start_full(SupervisorSettings::default(), http, None, |_| {}).await;
    let (_, conv) = user_and_conversation(&open, "guard-default-2").await;
    open.ok(
        "pass_control",
        json!({"conversationId": conv, "switchboardIntegration": "zd-agentWorkspace"}),
    )
    .await;
    open.ok(
        "send_message",
        text(&conv, "Sent over the agent: the guard is off."),
    )
    .await;
}
