//! Every tool's answer within one bound ([`crate::live::LiveSettings::answer_max_chars`]):
//! clients refuse or truncate large tool results (Claude Code refuses those over 25,000 tokens
//! by default), so the answer that leaves [`super::ZendeskMcp::enter`] is made to fit here,
//! for every tool, present and future.
//!
//! In order, until the answer fits:
//! 1. A page loses items from its far end (a message page its oldest, a forward list its last),
//!    at least one item stays, and `hasMore` and `nextCursor` then continue right after the
//!    last item kept.
//! 2. The longest strings are cut to a common length, each ending in a marker that says how
//!    much was cut and which call returns the item whole.
//! 3. Any other list loses items from its end.
//!
//! The answer's `trimmed` object says what was done. The bound counts characters of the
//! answer's JSON; the text content and the structured content are the same JSON, each within it.

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

/// How a tool's answer is trimmed.
struct Shape {
    tool: &'static str,
    /// The page: its field, the end kept, the list its cursor belongs to (none: a list without
    /// cursors), and a count of items left out that the answer already has.
    page: Option<(
        &'static str,
        Keep,
        Option<&'static str>,
        Option<&'static str>,
    )>,
    /// The call that returns a cut item whole.
    whole: &'static str,
}

/// Where a cut message is whole.
const WHOLE_MESSAGE: &str = "whole: get_message, or past the bound the resource sunco://conversations/{conversationId}/messages/{id}";

const SHAPES: &[Shape] = &[
    Shape {
        tool: "list_messages",
        page: Some(("messages", Keep::Last, Some("list_messages"), None)),
        whole: WHOLE_MESSAGE,
    },
    Shape {
        tool: "list_conversations",
        page: Some((
            "conversations",
            Keep::First,
            Some("list_conversations"),
            None,
        )),
        whole: "whole: get_conversation",
    },
    Shape {
        tool: "list_integrations",
        page: Some(("integrations", Keep::First, Some("list_integrations"), None)),
        whole: "whole: get_integration",
    },
    Shape {
        tool: "list_delivery_failures",
        page: Some(("failures", Keep::First, None, None)),
        whole: "whole: get_delivery_status",
    },
    Shape {
        tool: "find_users",
        page: Some(("users", Keep::First, None, None)),
        whole: "whole: get_user",
    },
    Shape {
        tool: "claim_conversation",
        page: Some(("unanswered", Keep::Last, None, Some("unansweredOmitted"))),
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

/// What a cut string ends with: how much was cut and where to get it whole.
fn marker(cut: usize, of: usize, whole: &str) -> String {
    format!("…[cut {cut} of {of} characters; {whole}]")
}

/// The length that counts: characters of the JSON text.
fn size<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.chars().count())
}

/// Brings a tool's answer within `max` characters. An answer without structured content (an
/// error, text) has its text cut instead.
pub(super) fn bound(tool: &str, response: &mut CallToolResponse, max: usize) {
    let CallToolResponse::Complete(done) = response else {
        return;
    };
    let Some(Value::Object(answer)) = done.structured_content.as_mut() else {
        for block in &mut done.content {
            if let Some(text) = block.as_text()
                && text.text.chars().count() > max
            {
                let whole = text.text.chars().count();
                let keep = max.saturating_sub(200);
                let mut cut: String = text.text.chars().take(keep).collect();
                cut.push_str(&marker(
                    whole - keep,
                    whole,
                    "the server bounds every answer",
                ));
                *block = ContentBlock::text(cut);
            }
        }
        return;
    };
    if size(answer) <= max {
        return;
    }
    let shape = SHAPES.iter().find(|s| s.tool == tool);
    let whole = shape.map_or(
        "the server bounds every answer (answer_max_chars): ask for less",
        |s| s.whole,
    );
    let conversation = answer.get("conversationId").and_then(Value::as_str);
    let whole = whole.replace(
        "{conversationId}",
        conversation.unwrap_or("<conversationId>"),
    );
    let whole = whole.as_str();
    let mut told = Trimmed::new(max);
    if let Some((field, keep, list, omitted)) = shape.and_then(|s| s.page) {
        trim_page(answer, field, keep, list, omitted, max, &mut told);
    }
    let mut v = Value::Object(std::mem::take(answer));
    let reserve = told.reserve();
    if size(&v) + reserve > max {
        told.cut = cut_strings(&mut v, max.saturating_sub(reserve), 64, whole);
    }
    if size(&v) + reserve > max {
        told.dropped += trim_lists(&mut v, max.saturating_sub(reserve));
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
    next: Option<&'static str>,
}

impl Trimmed {
    fn new(max: usize) -> Self {
        Self {
            max,
            omitted: 0,
            cut: 0,
            dropped: 0,
            next: None,
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
        let next = match (self.next, self.cut > 0) {
            (Some(next), false) => next.to_owned(),
            (Some(next), true) => {
                format!("{next} Strings ending in …[cut …] say where they are whole.")
            }
            (None, true) => "Strings ending in …[cut …] say where they are whole.".to_owned(),
            (None, false) => "Ask for less: lower limit or narrow the filters.".to_owned(),
        };
        o.insert("nextStep".into(), json!(next));
        Value::Object(o)
    }
}

/// Leaves out items from the page's far end until the answer fits (keeping one at least), and
/// makes `hasMore` and `nextCursor` continue after the last item kept.
fn trim_page(
    answer: &mut Map<String, Value>,
    field: &str,
    keep: Keep,
    list: Option<&str>,
    omitted_field: Option<&str>,
    max: usize,
    told: &mut Trimmed,
) {
    let mut total = size(answer) + told.reserve() + 120;
    let Some(Value::Array(items)) = answer.get_mut(field) else {
        return;
    };
    let mut left_out = 0;
    while total > max && items.len() > 1 {
        let item = match keep {
            Keep::First => items.pop(),
            Keep::Last => Some(items.remove(0)),
        };
        total -= item.map_or(0, |i| size(&i) + 1);
        left_out += 1;
    }
    if left_out == 0 {
        return;
    }
    let edge = match keep {
        Keep::First => items.last(),
        Keep::Last => items.first(),
    };
    let at = edge
        .and_then(|i| i.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    told.omitted = left_out;
    if let Some(counter) = omitted_field {
        let before = answer.get(counter).and_then(Value::as_u64).unwrap_or(0);
        answer.insert(counter.into(), json!(before + left_out as u64));
    }
    match (list, at) {
        (Some(list), Some(at)) => {
            answer.insert("hasMore".into(), json!(true));
            answer.insert("nextCursor".into(), json!(cursor::encode(list, &at)));
            told.next = Some("Pass nextCursor back as cursor for the items left out.");
        }
        _ if omitted_field.is_some() => {
            told.next = Some("The oldest items were left out; the newest are shown.");
        }
        _ => {
            answer.insert("hasMore".into(), json!(true));
            told.next = Some("Ask for fewer (lower limit) or narrow the filters to see the rest.");
        }
    }
}

/// Every string of `v` longer than `floor` characters, as (length, serialized length).
fn strings(v: &Value, floor: usize, out: &mut Vec<usize>) {
    match v {
        Value::String(s) => {
            let n = s.chars().count();
            if n > floor {
                out.push(n);
            }
        }
        Value::Array(list) => list.iter().for_each(|x| strings(x, floor, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, floor, out)),
        _ => {}
    }
}

/// Cuts every string longer than `cap` characters to `cap`, adding the marker (its `{id}` the
/// id of the outermost object around the string that has one: the item of a page, the
/// message of an answer); returns how many.
fn cap_strings(v: &mut Value, cap: usize, whole: &str, id: Option<&str>) -> usize {
    match v {
        Value::String(s) => {
            let n = s.chars().count();
            if n <= cap {
                return 0;
            }
            let mut cut: String = s.chars().take(cap).collect();
            let whole = whole.replace("{id}", id.unwrap_or("<its id>"));
            cut.push_str(&marker(n - cap, n, &whole));
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
            o.values_mut().map(|x| cap_strings(x, cap, whole, id)).sum()
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

/// Leaves out the last items of the longest lists until `v` fits; returns how many.
fn trim_lists(v: &mut Value, max: usize) -> usize {
    let mut dropped = 0;
    loop {
        let excess = size(v).saturating_sub(max);
        if excess == 0 {
            break;
        }
        let Some(list) = longest_list(v) else {
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

/// The list with the most characters in `v`, if one has items.
fn longest_list(v: &mut Value) -> Option<&mut Vec<Value>> {
    fn find(v: &Value, path: &mut Vec<usize>, best: &mut (usize, Vec<usize>)) {
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
            find(c, path, best);
            path.pop();
        }
    }
    let mut best = (0, vec![]);
    find(v, &mut vec![], &mut best);
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
    fn an_answer_within_the_bound_is_left_alone() {
        let v = json!({"messages": [{"id": id(1)}], "hasMore": false});
        let mut r = answer(v.clone());
        bound("list_messages", &mut r, 30_000);
        assert_eq!(structured(&r), v);
    }
}
