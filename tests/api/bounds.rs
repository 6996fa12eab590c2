//! Every tool's answer stays within the server's bound (`answer_max_chars`, 30,000 characters
//! by default): pages are trimmed and continue where they stopped; a single oversized item is
//! cut with a marker naming where it is whole.

use std::collections::HashSet;

use rmcp::model::{CallToolResult, ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

use super::claims::customer_writes;
use super::mcp_support::{TestServer, structured, text_of};
use super::support::TestSim;

const BOUND: usize = 30_000;

/// Both the text and the structured content are within the bound.
fn within(tool: &str, r: &CallToolResult) -> Value {
    let text = text_of(r);
    assert!(
        text.chars().count() <= BOUND,
        "{tool}: text of {} characters",
        text.chars().count()
    );
    let v = structured(tool, r);
    assert!(
        v.to_string().chars().count() <= BOUND,
        "{tool}: structured content over the bound"
    );
    v
}

#[tokio::test]
async fn a_page_of_long_messages_is_trimmed_and_its_cursor_continues_after_the_last_kept() {
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-03").await;
    let mut written = vec![];
    for n in 0..60 {
        let text = format!("{n:03} {}", "long customer message ".repeat(186));
        assert!(text.chars().count() <= 4096);
        written.push(customer_writes(&t.sim, &conv, "demo-user-03", &text).await);
    }
    // Every message of the conversation, from the API itself.
    let all = t
        .sim
        .get(&TestSim::app(&format!("/conversations/{conv}/messages")))
        .await;
    let all: Vec<String> = all.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(all.len() > 60);

    let mut seen: Vec<String> = vec![];
    let mut cursor: Option<String> = None;
    let mut trimmed_pages = 0;
    loop {
        let mut args = json!({"conversationId": conv});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = t.call("list_messages", args).await;
        let page = within("list_messages", &r);
        let ids: Vec<String> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_owned())
            .collect();
        assert!(!ids.is_empty());
        if let Some(trimmed) = page.get("trimmed") {
            trimmed_pages += 1;
            assert_eq!(trimmed["maxChars"], BOUND);
            assert!(trimmed["itemsOmitted"].as_u64().expect("itemsOmitted") > 0);
            assert!(
                trimmed["nextStep"]
                    .as_str()
                    .expect("nextStep")
                    .contains("nextCursor")
            );
            assert_eq!(page["hasMore"], true);
        }
        // Pages go back in time; each is oldest first.
        seen.splice(0..0, ids);
        match page["nextCursor"].as_str() {
            Some(c) if page["hasMore"] == true => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    assert!(
        trimmed_pages >= 2,
        "the 60 long messages span several pages"
    );
    assert_eq!(
        seen, all,
        "every message once, in order, across the trimmed pages"
    );
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
}

#[tokio::test]
async fn an_oversized_message_is_shortened_says_where_it_is_whole_and_reads_whole_as_a_resource() {
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-03").await;
    // A form of 20 select fields of 20 options with long labels: one message of about 60,000
    // characters, well within the API's limits (200 options of 128-character labels a field).
    let fields: Vec<Value> = (0..20)
        .map(|f| {
            let options: Vec<Value> = (0..20)
                .map(|o| json!({"name": format!("f{f}o{o}"), "label": format!("{f}/{o} {}", "l".repeat(120))}))
                .collect();
            json!({"type": "select", "name": format!("f{f}"), "label": format!("Field {f}"), "options": options})
        })
        .collect();
    let r = t
        .sim
        .post(
            &TestSim::app(&format!("/conversations/{conv}/messages")),
            json!({"author": {"type": "business"}, "content": {"type": "form", "fields": fields}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let whole = r.body["messages"][0].clone();
    let id = whole["id"].as_str().expect("id").to_owned();
    assert!(whole.to_string().len() > 50_000);

    let r = t
        .call(
            "get_message",
            json!({"conversationId": conv, "messageId": id}),
        )
        .await;
    let found = within("get_message", &r);
    assert_eq!(found["message"]["id"], id.as_str());
    // The options' labels (128 characters at most) are shorter than a marker: the form's
    // lists are shortened instead, and `trimmed` says where the message is whole.
    let fields = found["message"]["content"]["fields"]
        .as_array()
        .expect("fields");
    let options: usize = fields
        .iter()
        .map(|f| f["options"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(options < 400, "options left out: {options} of 400 shown");
    assert!(
        found["trimmed"]["listItemsDropped"]
            .as_u64()
            .expect("dropped")
            > 0
    );
    let uri = format!("sunco://conversations/{conv}/messages/{id}");
    let next = found["trimmed"]["nextStep"].as_str().expect("nextStep");
    assert!(
        next.contains(&uri),
        "trimmed names where it is whole: {next}"
    );

    let templates = t
        .client
        .list_all_resource_templates()
        .await
        .expect("templates");
    assert!(templates.iter().any(
        |tpl| tpl.uri_template == "sunco://conversations/{conversationId}/messages/{messageId}"
    ));
    let read = t
        .client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .expect("read");
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("text contents");
    };
    let read: Value = serde_json::from_str(text).expect("json");
    assert_eq!(
        read["content"], whole["content"],
        "the resource holds it whole"
    );
}
