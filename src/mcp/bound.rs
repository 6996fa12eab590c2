//! Every tool's answer within one bound ([`crate::live::LiveSettings::answer_max_chars`]):
//! clients refuse or truncate large tool results (Claude Code refuses those over 25,000 tokens
//! by default), so the answer that leaves [`super::ZendeskMcp::enter`] is made to fit here,
//! for every tool, present and future.
//!
//! In order, until the answer fits:
//! 1. A page loses items from its far end (a message page its oldest, a forward list its last);
//!    at least one item stays, and the answer says how to continue right after the last item
//!    kept: `hasMore` and `nextCursor` for a list with cursors, else the filter to call again
//!    with (`updatedBefore`, `createdBefore`).
//! 2. The longest strings are cut to a common length, each ending in a marker that says how
//!    much was cut and where the item is whole. Identifiers (ids, cursors, claim tokens) are
//!    never cut, nor a string the marker would not make shorter.
//! 3. Lists inside the answer (never the page itself) lose items from their end.
//! 4. Should it still not fit, every other string is cut to its marker.
//!
//! The answer's `trimmed` object says what was done. The bound counts characters of the
//! answer's JSON; the text content and the structured content are the same JSON, each within it.
//! An error (text without structured content) has the strings of its JSON cut the same way.

use rmcp::model::{CallToolResponse, ContentBlock};
use serde_json::{Map, Value, json};

use super::cursor;

/// Which end of a page holds the items to keep.
#[derive(Clone, Copy)]
enum Keep {
    /// The first items (a list that pages forward).
    First,
    /// The last items (a message page: the newest, oldest first; the next page is older).
    Last,
}

/// How a page that lost items continues.
#[derive(Clone, Copy)]
enum Continue {
    /// `nextCursor` of this list, after the last item kept.
    Cursor(&'static str),
    /// A list newest first without cursors: call again with the filter `arg` set to the
    /// item's `field` of the last item kept.
    Before {
        arg: &'static str,
        field: &'static str,
    },
    /// The items left out are counted in this field of the answer (the newest are kept).
    Counted(&'static str),
    /// Nothing continues the list: say so.
    Not,
}

/// A page: its field, the end kept, and how it continues.
#[derive(Clone, Copy)]
struct Page {
    field: &'static str,
    keep: Keep,
    then: Continue,
}

/// How a tool's answer is trimmed.
struct Shape {
    tool: &'static str,
    page: Option<Page>,
    /// Where a cut item is whole.
    whole: &'static str,
}

/// Where a cut message is whole.
const WHOLE_MESSAGE: &str =
    "whole: get_message, or the resource sunco://conversations/{conversationId}/messages/{id}";

const SHAPES: &[Shape] = &[
    Shape {
        tool: "list_messages",
        page: Some(Page {
            field: "messages",
            keep: Keep::Last,
            then: Continue::Cursor("list_messages"),
        }),
        whole: WHOLE_MESSAGE,
    },
    Shape {
        tool: "list_conversations",
        page: Some(Page {
            field: "conversations",
            keep: Keep::First,
            then: Continue::Cursor("list_conversations"),
        }),
        whole: "whole: get_conversation",
    },
    Shape {
        tool: "list_integrations",
        page: Some(Page {
            field: "integrations",
            keep: Keep::First,
            then: Continue::Cursor("list_integrations"),
        }),
        whole: "whole: get_integration",
    },
    Shape {
        tool: "list_delivery_failures",
        page: Some(Page {
            field: "failures",
            keep: Keep::First,
            then: Continue::Before {
                arg: "createdBefore",
                field: "createdAt",
            },
        }),
        whole: "whole: get_delivery_status",
    },
    Shape {
        tool: "find_users",
        page: Some(Page {
            field: "users",
            keep: Keep::First,
            then: Continue::Not,
        }),
        whole: "whole: get_user",
    },
    Shape {
        tool: "claim_conversation",
        page: Some(Page {
            field: "unanswered",
            keep: Keep::Last,
            then: Continue::Counted("unansweredOmitted"),
        }),
        whole: WHOLE_MESSAGE,
    },
    Shape {
        tool: "send_message",
        page: None,
        whole: WHOLE_MESSAGE,
    },
    Shape {
        tool: "get_message",
        page: None,
        whole: "whole: the resource sunco://conversations/{conversationId}/messages/{id}",
    },
];

/// `list_conversations` without a user pages the index, which has no cursors: it continues
/// with `updatedBefore` (the index is newest activity first).
const INDEX_PAGE: Continue = Continue::Before {
    arg: "updatedBefore",
    field: "lastActivityAt",
};

/// Where a cut item is whole when the tool names no place.
const WHOLE_ANY: &str = "the server bounds every answer (answer_max_chars): ask for less";

/// What a cut string ends with: how much was cut and where to get it whole.
fn marker(cut: usize, of: usize, whole: &str) -> String {
    format!("…[cut {cut} of {of} characters; {whole}]")
}

/// The length that counts: characters of the JSON text.
fn size<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.chars().count())
}

/// A field whose value is an identifier a caller passes back as it is: never cut.
fn is_identifier(key: &str) -> bool {
    matches!(key, "id" | "token" | "cursor" | "nextCursor" | "claim") || key.ends_with("Id")
}

/// Brings a tool's answer within `max` characters.
pub(super) fn bound(tool: &str, response: &mut CallToolResponse, max: usize) {
    let CallToolResponse::Complete(done) = response else {
        return;
    };
    let Some(Value::Object(answer)) = done.structured_content.as_mut() else {
        // An error, or text: the strings of its JSON are cut; other text is cut at its end.
        let total: usize = (done.content.iter())
            .filter_map(|b| b.as_text().map(|t| t.text.chars().count()))
            .sum();
        if total <= max {
            return;
        }
        let share = max / done.content.len().max(1);
        for block in &mut done.content {
            let Some(text) = block.as_text() else {
                continue;
            };
            let cut = match serde_json::from_str::<Value>(&text.text) {
                Ok(mut v @ Value::Object(_)) => {
                    let count = cut_strings(&mut v, share, 64, WHOLE_ANY);
                    if size(&v) > share {
                        cut_strings(&mut v, share, 0, WHOLE_ANY);
                    }
                    (count > 0).then(|| v.to_string())
                }
                _ => None,
            };
            let cut = cut.unwrap_or_else(|| {
                let whole = text.text.chars().count();
                let keep = share.saturating_sub(120).min(whole);
                let mut cut: String = text.text.chars().take(keep).collect();
                cut.push_str(&marker(
                    whole - keep,
                    whole,
                    "the server bounds every answer",
                ));
                cut
            });
            *block = ContentBlock::text(cut);
        }
        return;
    };
    if size(answer) <= max {
        return;
    }
    let shape = SHAPES.iter().find(|s| s.tool == tool);
    let whole = shape.map_or(WHOLE_ANY, |s| s.whole);
    // The conversation the cut items belong to, for the resource's address.
    let conversation = (answer.get("conversationId"))
        .or_else(|| answer.get("claim").and_then(|c| c.get("conversationId")))
        .and_then(Value::as_str);
    let whole = whole.replace(
        "{conversationId}",
        conversation.unwrap_or("<conversationId>"),
    );
    let whole = whole.as_str();
    let mut told = Trimmed::new(max);
    // Where the one item of an answer is whole (get_message's message), for `trimmed` to say
    // when lists inside it were shortened.
    let single = (answer.values())
        .filter_map(|v| v.get("id").and_then(Value::as_str))
        .next()
        .map(str::to_owned);
    told.whole = whole.replace("{id}", single.as_deref().unwrap_or("<the item's id>"));
    let page = shape.and_then(|s| s.page.as_ref()).map(|p| {
        let index = answer.get("source").and_then(Value::as_str) == Some("index");
        Page {
            then: if index { INDEX_PAGE } else { p.then },
            ..*p
        }
    });
    if let Some(page) = &page {
        trim_page(answer, page, max, &mut told);
    }
    let mut v = Value::Object(std::mem::take(answer));
    let reserve = told.reserve();
    let room = max.saturating_sub(reserve);
    if size(&v) > room {
        told.cut = cut_strings(&mut v, room, 64, whole);
    }
    if size(&v) > room {
        told.dropped += trim_lists(&mut v, room, page.as_ref().map(|p| p.field));
    }
    if size(&v) > room {
        told.cut += cut_strings(&mut v, room, 0, whole);
    }
    let Value::Object(mut trimmed) = v else {
        return;
    };
    trimmed.insert("trimmed".into(), told.to_json());
    let value = Value::Object(trimmed);
    done.content = vec![ContentBlock::text(value.to_string())];
    done.structured_content = Some(value);
}

/// What the trimming did, as the answer's `trimmed` says.
struct Trimmed {
    max: usize,
    /// Items of the page left out.
    omitted: usize,
    /// Strings cut.
    cut: usize,
    /// Items of other lists left out.
    dropped: usize,
    next: Option<String>,
    /// Where a shortened item is whole.
    whole: String,
}

impl Trimmed {
    fn new(max: usize) -> Self {
        Self {
            max,
            omitted: 0,
            cut: 0,
            dropped: 0,
            next: None,
            whole: String::new(),
        }
    }

    /// Room for `trimmed` itself.
    fn reserve(&self) -> usize {
        400
    }

    fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("maxChars".into(), json!(self.max));
        if self.omitted > 0 {
            o.insert("itemsOmitted".into(), json!(self.omitted));
        }
        if self.cut > 0 {
            o.insert("stringsCut".into(), json!(self.cut));
        }
        if self.dropped > 0 {
            o.insert("listItemsDropped".into(), json!(self.dropped));
        }
        let mut steps: Vec<String> = self.next.iter().cloned().collect();
        if self.cut > 0 {
            steps.push("Strings ending in …[cut …] say where they are whole.".into());
        }
        if self.dropped > 0 {
            steps.push(format!(
                "Lists inside were shortened (listItemsDropped); {}.",
                self.whole
            ));
        }
        if steps.is_empty() {
            steps.push("Ask for less: lower limit or narrow the filters.".into());
        }
        let next = steps.join(" ");
        o.insert("nextStep".into(), json!(next));
        Value::Object(o)
    }
}

/// Leaves out items from the page's far end until the answer fits (keeping one at least), and
/// says how the list continues after the last item kept.
fn trim_page(answer: &mut Map<String, Value>, page: &Page, max: usize, told: &mut Trimmed) {
    let mut total = size(answer) + told.reserve() + 120;
    let Some(Value::Array(items)) = answer.get_mut(page.field) else {
        return;
    };
    let mut left_out = 0;
    while total > max && items.len() > 1 {
        let item = match page.keep {
            Keep::First => items.pop(),
            Keep::Last => Some(items.remove(0)),
        };
        total -= item.map_or(0, |i| size(&i) + 1);
        left_out += 1;
    }
    if left_out == 0 {
        return;
    }
    let edge = match page.keep {
        Keep::First => items.last(),
        Keep::Last => items.first(),
    };
    let of_edge = |field: &str| {
        edge.and_then(|i| i.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let edge_id = of_edge("id");
    let edge_at = match page.then {
        Continue::Before { field, .. } => of_edge(field),
        _ => None,
    };
    told.omitted = left_out;
    match page.then {
        Continue::Cursor(list) => {
            if let Some(at) = edge_id {
                answer.insert("hasMore".into(), json!(true));
                answer.insert("nextCursor".into(), json!(cursor::encode(list, &at)));
                told.next = Some("Pass nextCursor back as cursor for the items left out.".into());
            }
        }
        Continue::Before { arg, .. } => {
            answer.insert("hasMore".into(), json!(true));
            told.next = Some(match edge_at {
                Some(at) => {
                    answer.insert("continueWith".into(), json!({arg: at}));
                    format!(
                        "Call again with {arg} = \"{at}\" (continueWith) and the same filters for the items left out."
                    )
                }
                None => "Ask for fewer (lower limit) or narrow the filters.".to_owned(),
            });
        }
        Continue::Counted(counter) => {
            let before = answer.get(counter).and_then(Value::as_u64).unwrap_or(0);
            answer.insert(counter.into(), json!(before + left_out as u64));
            told.next = Some("The oldest items were left out; the newest are shown.".into());
        }
        Continue::Not => {
            answer.insert("hasMore".into(), json!(true));
            told.next = Some(
                "The items left out cannot be listed here: narrow the query, or get each by its id."
                    .into(),
            );
        }
    }
}

/// Every string of `v` longer than `floor` characters that may be cut, as its length.
fn strings(v: &Value, floor: usize, out: &mut Vec<usize>) {
    match v {
        Value::String(s) => {
            let n = s.chars().count();
            if n > floor {
                out.push(n);
            }
        }
        Value::Array(list) => list.iter().for_each(|x| strings(x, floor, out)),
        Value::Object(o) => (o.iter())
            .filter(|(k, _)| !is_identifier(k))
            .for_each(|(_, x)| strings(x, floor, out)),
        _ => {}
    }
}

/// Cuts every string that may be cut and is longer than `cap` characters plus its marker to
/// `cap`, adding the marker (its `{id}` the id of the outermost object around the string that
/// has one: the item of a page, the message of an answer); returns how many.
fn cap_strings(v: &mut Value, cap: usize, whole: &str, id: Option<&str>) -> usize {
    match v {
        Value::String(s) => {
            let n = s.chars().count();
            let whole = whole.replace("{id}", id.unwrap_or("<its id>"));
            let mark = marker(n.saturating_sub(cap), n, &whole);
            if n <= cap + mark.chars().count() {
                return 0;
            }
            let mut cut: String = s.chars().take(cap).collect();
            cut.push_str(&mark);
            *s = cut;
            1
        }
        Value::Array(list) => list
            .iter_mut()
            .map(|x| cap_strings(x, cap, whole, id))
            .sum(),
        Value::Object(o) => {
            let own = o.get("id").and_then(Value::as_str).map(str::to_owned);
            let id = id.or(own.as_deref());
            (o.iter_mut())
                .filter(|(k, _)| !is_identifier(k))
                .map(|(_, x)| cap_strings(x, cap, whole, id))
                .sum()
        }
        _ => 0,
    }
}

/// Cuts the longest strings to the longest common length that makes `v` fit in `max` (never
/// below `floor` characters); returns how many were cut.
fn cut_strings(v: &mut Value, max: usize, floor: usize, whole: &str) -> usize {
    let mut lengths = vec![];
    strings(v, floor, &mut lengths);
    let Some(&longest) = lengths.iter().max() else {
        return 0;
    };
    let fits = |cap: usize| {
        let mut c = v.clone();
        cap_strings(&mut c, cap, whole, None);
        size(&c) <= max
    };
    // The largest cap that fits, or the floor when none does.
    let (mut low, mut high) = (floor, longest);
    if !fits(low) {
        return cap_strings(v, floor, whole, None);
    }
    while low < high {
        let mid = (low + high).div_ceil(2);
        if fits(mid) {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    cap_strings(v, low, whole, None)
}

/// Leaves out the last items of the longest lists (never the page, `skip` at the top) until
/// `v` fits; returns how many.
fn trim_lists(v: &mut Value, max: usize, skip: Option<&str>) -> usize {
    let mut dropped = 0;
    loop {
        let excess = size(v).saturating_sub(max);
        if excess == 0 {
            break;
        }
        let Some(list) = longest_list(v, skip) else {
            break;
        };
        let mut freed = 0;
        while freed < excess
            && let Some(item) = list.pop()
        {
            freed += size(&item) + 1;
            dropped += 1;
        }
    }
    dropped
}

/// The list with the most characters in `v` that has items, other than the top-level `skip`.
fn longest_list<'v>(v: &'v mut Value, skip: Option<&str>) -> Option<&'v mut Vec<Value>> {
    fn find(v: &Value, path: &mut Vec<usize>, skip: Option<&str>, best: &mut (usize, Vec<usize>)) {
        let children: Vec<&Value> = match v {
            Value::Array(list) => {
                let n = size(v);
                if !list.is_empty() && n > best.0 {
                    *best = (n, path.clone());
                }
                list.iter().collect()
            }
            Value::Object(o) => o.values().collect(),
            _ => return,
        };
        for (i, c) in children.into_iter().enumerate() {
            path.push(i);
            // The page itself keeps its items (inside them, lists may lose theirs).
            let is_page = path.len() == 1
                && matches!(v, Value::Object(o) if o.keys().nth(i).map(String::as_str) == skip);
            match c {
                Value::Array(list) if is_page => {
                    for (j, item) in list.iter().enumerate() {
                        path.push(j);
                        find(item, path, None, best);
                        path.pop();
                    }
                }
                _ => find(c, path, None, best),
            }
            path.pop();
        }
    }
    let mut best = (0, vec![]);
    find(v, &mut vec![], skip, &mut best);
    if best.0 == 0 {
        return None;
    }
    let mut at = v;
    for i in best.1 {
        at = match at {
            Value::Array(list) => list.get_mut(i)?,
            Value::Object(o) => o.values_mut().nth(i)?,
            _ => return None,
        };
    }
    match at {
        Value::Array(list) => Some(list),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::CallToolResult;

    fn answer(v: Value) -> CallToolResponse {
        CallToolResult::structured(v).into()
    }

    fn structured(r: &CallToolResponse) -> Value {
        match r {
            CallToolResponse::Complete(d) => d.structured_content.clone().unwrap(),
            _ => panic!("not complete"),
        }
    }

    fn id(n: usize) -> String {
        format!("{n:024x}")
    }

    #[test]
    fn a_message_page_keeps_its_newest_and_continues_before_the_oldest_kept() {
        let messages: Vec<Value> = (0..100)
            .map(|n| json!({"id": id(n), "content": {"type": "text", "text": "x".repeat(4000)}}))
            .collect();
        let mut r =
            answer(json!({"conversationId": id(999), "messages": messages, "hasMore": false}));
        bound("list_messages", &mut r, 30_000);
        let v = structured(&r);
        assert!(v.to_string().chars().count() <= 30_000);
        let kept = v["messages"].as_array().unwrap();
        assert_eq!(kept.last().unwrap()["id"], id(99));
        let oldest = kept[0]["id"].as_str().unwrap();
        assert_eq!(v["hasMore"], true);
        assert_eq!(
            cursor::decode("list_messages", v["nextCursor"].as_str().unwrap()).unwrap(),
            oldest
        );
        assert_eq!(v["trimmed"]["itemsOmitted"], 100 - kept.len());
        assert!(v["trimmed"].get("stringsCut").is_none());
    }

    #[test]
    fn one_oversized_item_is_cut_with_a_marker() {
        let mut r =
            answer(json!({"message": {"id": id(1), "a": "y".repeat(50_000), "b": "short"}}));
        bound("get_message", &mut r, 10_000);
        let v = structured(&r);
        assert!(v.to_string().chars().count() <= 10_000);
        let a = v["message"]["a"].as_str().unwrap();
        assert!(a.contains("…[cut "), "{a}");
        assert_eq!(v["message"]["b"], "short");
        assert_eq!(v["trimmed"]["stringsCut"], 1);
        let text = match &r {
            CallToolResponse::Complete(d) => d.content[0].as_text().unwrap().text.clone(),
            _ => unreachable!(),
        };
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }

    #[test]
    fn a_list_without_a_shape_loses_its_tail() {
        let items: Vec<Value> = (0..5000).map(|n| json!({"n": n})).collect();
        let mut r = answer(json!({"things": items}));
        bound("some_future_tool", &mut r, 5_000);
        let v = structured(&r);
        assert!(v.to_string().chars().count() <= 5_000);
        assert_eq!(v["things"][0]["n"], 0);
        assert!(v["trimmed"]["listItemsDropped"].as_u64().unwrap() > 0);
    }

    #[test]
    fn the_index_continues_with_updated_before_not_a_cursor() {
        let conversations: Vec<Value> = (0..100)
            .map(|n| json!({"id": id(n), "lastActivityAt": format!("2026-12-07T10:{:02}:00.000Z", 99 - n), "note": "z".repeat(400)}))
            .collect();
        let mut r =
            answer(json!({"source": "index", "conversations": conversations, "hasMore": false}));
        bound("list_conversations", &mut r, 10_000);
        let v = structured(&r);
        assert!(v.to_string().chars().count() <= 10_000);
        assert!(
            v.get("nextCursor").is_none(),
            "the index takes no cursor: {v}"
        );
        let kept = v["conversations"].as_array().unwrap();
        let last = kept.last().unwrap()["lastActivityAt"].as_str().unwrap();
        let next = v["trimmed"]["nextStep"].as_str().unwrap();
        assert!(
            next.contains(&format!("updatedBefore = \"{last}\"")),
            "{next}"
        );
        assert_eq!(v["hasMore"], true);
    }

    #[test]
    fn lists_inside_the_one_item_kept_shrink_but_the_page_keeps_it_and_its_cursor() {
        let parts: Vec<Value> = (0..2000).map(|n| json!({"n": n})).collect();
        let messages = vec![
            json!({"id": id(1), "content": {"type": "list", "items": parts.clone()}}),
            json!({"id": id(2), "content": {"type": "list", "items": parts}}),
        ];
        let mut r =
            answer(json!({"conversationId": id(9), "messages": messages, "hasMore": false}));
        bound("list_messages", &mut r, 5_000);
        let v = structured(&r);
        assert!(v.to_string().chars().count() <= 5_000);
        let kept = v["messages"].as_array().unwrap();
        assert_eq!(kept.len(), 1, "the newest stays");
        assert_eq!(kept[0]["id"], id(2));
        let at = cursor::decode("list_messages", v["nextCursor"].as_str().unwrap()).unwrap();
        assert_eq!(at, id(2), "the next page is what lies before the one kept");
        assert!(v["trimmed"]["listItemsDropped"].as_u64().unwrap() > 0);
    }

    #[test]
    fn identifiers_are_never_cut() {
        let token = format!("clm.{}.1.{}", id(3), "f".repeat(32));
        let mut r = answer(json!({"claim": {"conversationId": id(3), "token": token},
            "unanswered": [{"id": id(4), "content": {"text": "q".repeat(20_000)}}]}));
        bound("claim_conversation", &mut r, 3_000);
        let v = structured(&r);
        assert!(v.to_string().chars().count() <= 3_000);
        assert_eq!(v["claim"]["token"], token.as_str());
        let text = v["unanswered"][0]["content"]["text"].as_str().unwrap();
        assert!(
            text.contains(&format!(
                "sunco://conversations/{}/messages/{}",
                id(3),
                id(4)
            )),
            "the marker names the claimed conversation's message: {text}"
        );
    }

    #[test]
    fn an_error_stays_json_with_its_message_cut() {
        let error =
            json!({"error": "invalid_argument", "field": "content", "message": "m".repeat(10_000)});
        let mut r: CallToolResponse =
            CallToolResult::error(vec![ContentBlock::text(error.to_string())]).into();
        bound("send_message", &mut r, 2_000);
        let CallToolResponse::Complete(d) = &r else {
            unreachable!()
        };
        let text = &d.content[0].as_text().unwrap().text;
        assert!(text.chars().count() <= 2_000);
        let v: Value = serde_json::from_str(text).expect("still JSON");
        assert_eq!(v["error"], "invalid_argument");
        assert!(v["message"].as_str().unwrap().contains("…[cut "));
    }

    #[test]
    fn an_answer_within_the_bound_is_left_alone() {
        let v = json!({"messages": [{"id": id(1)}], "hasMore": false});
        let mut r = answer(v.clone());
        bound("list_messages", &mut r, 30_000);
        assert_eq!(structured(&r), v);
    }
}
