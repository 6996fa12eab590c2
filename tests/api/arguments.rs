//! Tool arguments and HTTP as real clients send them, and schemas every client can read,
//! through MCP over HTTP.

use serde_json::{Value, json};

use crate::mcp_support::{TestServer, post_json};

#[tokio::test]
async fn numbers_as_strings_json_text_and_null_for_absent_are_taken_as_meant() {
    let t = TestServer::start().await;
    // Claude Code's forms: integers as strings, arrays as JSON text; others send null.
    let page = t
        .ok(
            "list_conversations",
            json!({"userExternalId": "demo-user-01", "limit": "1", "cursor": null, "userId": null}),
        )
        .await;
    assert_eq!(page["conversations"].as_array().map(Vec::len), Some(1));
    let conv = page["conversations"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let listed = t
        .ok(
            "list_integrations",
            json!({"types": "[\"web\",\"messenger\"]", "limit": 10.0}),
        )
        .await;
    let types: Vec<&str> = listed["integrations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert!(
        !types.is_empty() && types.iter().all(|t| ["web", "messenger"].contains(t)),
        "{types:?}"
    );
    let messages = t
        .ok(
            "list_messages",
            json!({"conversationId": conv, "limit": " 5 "}),
        )
        .await;
    assert_eq!(messages["messages"].as_array().map(Vec::len), Some(5));
    // An object as JSON text, and null for every optional argument of a send.
    let sent = t
        .ok(
            "send_message",
            json!({"conversationId": conv, "content": "{\"type\":\"text\",\"text\":\"hi\"}",
                   "author": null, "destination": null, "metadata": null, "idempotencyKey": null}),
        )
        .await;
    assert_eq!(sent["messages"][0]["content"]["text"], "hi");
}

#[tokio::test]
async fn every_argument_error_of_every_tool_is_the_json_error_naming_the_field() {
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-01").await;
    let cases = [
        (
            "list_messages",
            json!({"conversationId": conv, "limit": 2.5}),
            "limit",
        ),
        (
            "list_messages",
            json!({"conversationId": conv, "limit": "many"}),
            "limit",
        ),
        (
            "list_messages",
            json!({"conversationId": conv, "limit": true}),
            "limit",
        ),
        (
            "list_messages",
            json!({"conversationId": 42}),
            "conversationId",
        ),
        (
            "list_messages",
            json!({"conversationId": null}),
            "conversationId",
        ),
        ("list_messages", json!({}), "conversationId"),
        ("list_integrations", json!({"types": "web"}), "types"),
        ("list_integrations", json!({"types": [1]}), "types[0]"),
        (
            "create_conversation",
            json!({"type": "group", "participants": []}),
            "type",
        ),
        (
            "send_message",
            json!({"conversationId": conv, "content": {"type": "hologram"}}),
            "content.type",
        ),
        (
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": "x"}, "author": {"type": "robot"}}),
            "author.type",
        ),
        (
            "get_message",
            json!({"conversationId": conv, "messageId": "x", "maxPages": 99}),
            "maxPages",
        ),
    ];
    for (tool, args, field) in cases {
        let e = t.err(tool, args.clone()).await;
        assert_eq!(e["error"], "invalid_argument", "{tool} {args}: {e}");
        assert_eq!(e["field"], field, "{tool} {args}: {e}");
        assert!(
            e["message"]
                .as_str()
                .is_some_and(|m| !m.contains("failed to deserialize")),
            "{e}"
        );
    }
    // An unknown argument, for every tool: one mechanism, whatever the tool.
    let tools = t.client.list_all_tools().await.expect("tools");
    for tool in tools {
        let e = t.err(&tool.name, json!({"bogusArgument": 1})).await;
        assert_eq!(e["error"], "invalid_argument", "{}: {e}", tool.name);
        assert_eq!(e["field"], "bogusArgument", "{}: {e}", tool.name);
    }
}

/// What a portable schema must not contain, checked independently of the server's rewriting.
fn unportable(schema: &Value, at: &str, out: &mut Vec<String>) {
    // The list is JSON Schema's (2020-12 validation, §7.3), which the server's copy names.
    const FORMATS: &[&str] = zendesk_messaging_mcp::mcp::schema::STANDARD_FORMATS;
    let Value::Object(o) = schema else {
        out.push(format!("{at}: {schema} is not a schema object"));
        return;
    };
    for (k, v) in o {
        let here = format!("{at}/{k}");
        match (k.as_str(), v) {
            ("$ref" | "$defs" | "definitions", _) => out.push(here),
            ("format", Value::String(f)) if !FORMATS.contains(&f.as_str()) => {
                out.push(format!("{here}: {f}"))
            }
            ("type", Value::Array(_)) => out.push(format!("{here}: a type array")),
            ("additionalProperties", Value::Bool(false)) => {}
            ("properties", Value::Object(props)) => {
                for (name, p) in props {
                    unportable(p, &format!("{here}/{name}"), out);
                }
            }
            ("items" | "additionalProperties" | "not", v) => unportable(v, &here, out),
            ("anyOf" | "oneOf" | "allOf", Value::Array(list)) => {
                for (i, v) in list.iter().enumerate() {
                    unportable(v, &format!("{here}/{i}"), out);
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn schemas_are_self_contained_portable_and_within_the_budget() {
    let t = TestServer::start().await;
    let tools = t.client.list_all_tools().await.expect("tools");
    let mut problems = vec![];
    let mut read_by_a_model = 0;
    for tool in &tools {
        let input = Value::Object((*tool.input_schema).clone());
        unportable(&input, &format!("{}/inputSchema", tool.name), &mut problems);
        if let Some(output) = &tool.output_schema {
            let output = Value::Object((**output).clone());
            unportable(
                &output,
                &format!("{}/outputSchema", tool.name),
                &mut problems,
            );
        }
        read_by_a_model += json!({"name": tool.name, "description": tool.description,
            "inputSchema": input})
        .to_string()
        .len();
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        read_by_a_model <= 24_576,
        "what a model reads of tools/list is {read_by_a_model} bytes, over 24,576"
    );
}

#[tokio::test]
async fn every_accept_header_clients_send_is_served_and_a_batch_gets_a_jsonrpc_error() {
    let t = TestServer::start().await;
    let url = t.server.mcp_url();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "accept-test", "version": "0"}}})
    .to_string();
    let list = crate::mcp_support::stateless_request("tools/list", json!({}));
    let stateless = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/list"),
    ];
    // A tool call with a progress token: its answer is a stream when the client can take one.
    let scan = crate::mcp_support::stateless_request(
        "tools/call",
        json!({"name": "get_message", "arguments": {"conversationId": t.conversation_of("demo-user-01").await,
               "messageId": "5f0c1e2d3b4a5968778899ff", "maxPages": 2},
               "_meta": {"progressToken": "p1"}}),
    );
    let scan_headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "get_message"),
    ];
    for accept in [
        None,
        Some("*/*"),
        Some("application/json"),
        Some("text/event-stream"),
    ] {
        for (body, headers) in [
            (&initialize, &[][..]),
            (&list, &stateless[..]),
            (&scan, &scan_headers[..]),
        ] {
            let answer = post_json(&url, accept, headers, body.clone()).await;
            let (status, ct, text) = (answer.status, answer.content_type(), &answer.body);
            assert_eq!(status, 200, "{accept:?}: {text}");
            match accept {
                Some("application/json") => {
                    assert!(ct.starts_with("application/json"), "{accept:?}: {ct}");
                    let v: Value = serde_json::from_str(text).expect("JSON");
                    assert!(v.get("result").is_some(), "{v}");
                }
                Some("text/event-stream") => {
                    assert!(ct.starts_with("text/event-stream"), "{accept:?}: {ct}");
                    assert!(text.contains("data: {"), "{text}");
                }
                _ => assert!(text.contains("\"result\""), "{accept:?}: {text}"),
            }
        }
    }
    let answer = post_json(
        &url,
        Some("application/json, text/event-stream"),
        &[],
        format!("[{initialize}]"),
    )
    .await;
    let (status, ct, text) = (answer.status, answer.content_type(), &answer.body);
    assert_eq!(status, 400, "{text}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let v: Value = serde_json::from_str(text).expect("JSON-RPC error");
    assert_eq!(v["error"]["code"], -32600, "{v}");
    // A request that is neither stateless nor in a session: a JSON-RPC error saying which
    // headers a stateless request needs (the transport answers plain text).
    let list = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}});
    let answer = post_json(
        &url,
        Some("application/json, text/event-stream"),
        &[],
        list.to_string(),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.content_type().starts_with("application/json"));
    let v: Value = serde_json::from_str(&answer.body).expect("JSON-RPC error");
    assert_eq!(v["id"], 7, "{v}");
    let says = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        says.contains("MCP-Protocol-Version")
            && says.contains("Mcp-Method")
            && says.contains("initialize"),
        "{v}"
    );
}

#[tokio::test]
async fn inside_content_the_same_forms_are_taken_and_every_error_names_its_path() {
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-01").await;
    let send = |content: Value| json!({"conversationId": conv, "content": content});
    // The forms clients send, at any depth of content.
    let sent = t
        .ok(
            "send_message",
            send(json!({"type": "location", "coordinates": "{\"lat\": \"1.5\", \"long\": 2}"})),
        )
        .await;
    assert_eq!(sent["messages"][0]["content"]["coordinates"]["lat"], 1.5);
    let cases = [
        (
            json!({"type": "text", "text": "x", "bogus": "y"}),
            "content.bogus",
        ),
        (
            json!({"type": "location", "coordinates": {"lat": "north", "long": 2}}),
            "content.coordinates.lat",
        ),
        (
            json!({"type": "carousel", "items": [{"title": 5, "actions": [{"type": "postback", "text": "a", "payload": "p"}]}]}),
            "content.items[0].title",
        ),
        (
            json!({"type": "carousel", "items": [{"title": "t", "actions": [{"type": "teleport", "text": "a"}]}]}),
            "content.items[0].actions[0].type",
        ),
        (json!({"type": "text", "text": null}), "content.text"),
    ];
    for (content, field) in cases {
        let e = t.err("send_message", send(content.clone())).await;
        assert_eq!(e["error"], "invalid_argument", "{content}: {e}");
        assert_eq!(e["field"], field, "{content}: {e}");
    }
    // Deeper than the tool's own arguments, null is a value: refused, not dropped.
    let e = t
        .err(
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": "x"}, "metadata": {"a": null, "b": 1}}),
        )
        .await;
    assert_eq!(e["error"], "invalid_argument", "{e}");
    let e = t
        .err(
            "update_user",
            json!({"userId": "demo-user-02", "profile": {"email": null}}),
        )
        .await;
    assert_eq!(e["field"], "profile.email", "{e}");
}

#[tokio::test]
async fn what_is_not_one_jsonrpc_message_gets_a_jsonrpc_error() {
    let t = TestServer::start().await;
    let url = t.server.mcp_url();
    let both = Some("application/json, text/event-stream");
    let call = |arguments: Value| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "list_integrations", "arguments": arguments,
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}}}})
        .to_string()
    };
    let stateless = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "list_integrations"),
    ];
    for (body, code) in [
        ("nonsense".to_owned(), -32700),
        ("{\"foo\": 1}".to_owned(), -32600),
        ("\"x\"".to_owned(), -32600),
        ("5".to_owned(), -32600),
        (
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":5}".to_owned(),
            -32602,
        ),
        (call(json!([])), -32602),
        (call(json!("x")), -32602),
    ] {
        let answer = post_json(&url, both, &stateless, body.clone()).await;
        let (status, ct, text) = (answer.status, answer.content_type(), &answer.body);
        assert_eq!(status, 400, "{body}: {text}");
        assert!(ct.starts_with("application/json"), "{body}: {ct}");
        let v: Value = serde_json::from_str(text).expect("a JSON-RPC error");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    // JSON text of the arguments object is the object.
    let answer = post_json(&url, both, &stateless, call(json!("{\"limit\": \"2\"}"))).await;
    let (status, text) = (answer.status, &answer.body);
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(v["result"]["isError"], false, "{v}");
    // An Accept that allows neither answer type, and a body that says it is not JSON.
    let answer = post_json(&url, Some("text/html"), &stateless, call(json!({}))).await;
    let (status, text) = (answer.status, &answer.body);
    assert_eq!(status, 406, "{text}");
    assert!(serde_json::from_str::<Value>(text).is_ok(), "{text}");
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "text/plain")
        .body(call(json!({})))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 415);
    let v: Value = r.json().await.expect("a JSON-RPC error");
    assert!(v["error"]["message"].is_string(), "{v}");
}
