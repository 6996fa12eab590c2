//! Messages: `messagePost` and its content, with the spec's rules.

use serde_json::{Map, Value};

use super::{Check, join};
use crate::simulator::error::ApiResult;

const ACTION_TYPES: &[&str] = &[
    "buy",
    "link",
    "locationRequest",
    "postback",
    "reply",
    "webview",
];
const ACTION_SUBSET: &[&str] = &["buy", "link", "postback", "webview"];
pub(crate) const SENDABLE_TYPES: &[&str] = &[
    "text", "image", "file", "carousel", "list", "location", "form", "template",
];

fn action(c: &mut Check, v: &Value, path: &str, allowed: &[&str]) {
    let Some(o) = c.object(v, path) else { return };
    let Some(kind) = c.one_of(o, path, "type", true, allowed) else {
        return;
    };
    c.string(o, path, "text", true, 1, 4096);
    c.metadata(o, path);
    match kind {
        "buy" => {
            c.integer(o, path, "amount", true, false, 0..=i64::MAX);
            c.string(o, path, "currency", false, 3, 3);
        }
        "link" => {
            c.uri(o, path, "uri", true, 2048);
            c.boolean(o, path, "default", false);
            c.nested(o, path, "extraChannelOptions", false);
        }
        "locationRequest" => {}
        "postback" => {
            c.string(o, path, "payload", true, 1, 4096);
        }
        "reply" => {
            c.string(o, path, "payload", true, 1, 4096);
            c.uri(o, path, "iconUrl", false, 2048);
        }
        "webview" => {
            c.uri(o, path, "uri", true, 2048);
            c.uri(o, path, "fallback", true, 2048);
            c.one_of(o, path, "size", false, &["compact", "tall", "full"]);
            c.boolean(o, path, "openOnReceive", false);
            c.boolean(o, path, "default", false);
            c.nested(o, path, "extraChannelOptions", false);
        }
        _ => {}
    }
}

fn actions(
    c: &mut Check,
    o: &Map<String, Value>,
    path: &str,
    min: usize,
    max: usize,
    allowed: &[&str],
    required: bool,
) -> usize {
    let Some(list) = c.array(o, path, "actions", required, min, max) else {
        return 0;
    };
    for (i, a) in list.iter().enumerate() {
        action(c, a, &format!("{path}.actions[{i}]"), allowed);
    }
    list.len()
}

fn items(c: &mut Check, o: &Map<String, Value>, path: &str) {
    let Some(list) = c.array(o, path, "items", true, 1, 10) else {
        return;
    };
    for (i, item) in list.iter().enumerate() {
        let p = format!("{path}.items[{i}]");
        let Some(io) = c.object(item, &p) else {
            continue;
        };
        c.string(io, &p, "title", true, 1, 128);
        c.string(io, &p, "description", false, 0, 128);
        c.uri(io, &p, "mediaUrl", false, 2048);
        c.string(io, &p, "mediaType", false, 0, 128);
        c.string(io, &p, "altText", false, 0, 128);
        c.one_of(io, &p, "size", false, &["compact", "large"]);
        actions(c, io, &p, 1, 3, ACTION_SUBSET, true);
        c.metadata(io, &p);
    }
}

fn rich_text(c: &mut Check, o: &Map<String, Value>) -> (bool, bool, bool) {
    let text = c.string(o, "content", "text", false, 0, 4096).is_some();
    let html = c.string(o, "content", "htmlText", false, 1, 4096).is_some();
    let md = c
        .string(o, "content", "markdownText", false, 1, 4096)
        .is_some();
    if html && md {
        c.fail(
            "content.markdownText",
            "cannot be combined with content.htmlText",
        );
    }
    c.boolean(o, "content", "blockChatInput", false);
    (text, html, md)
}

/// `messagePost`. Returns nothing; the handler deserialises the checked body.
pub(crate) fn message_post(body: &Value) -> ApiResult<()> {
    let mut c = Check::new();
    let Some(o) = c.object(body, "") else {
        return c.finish();
    };
    if let Some(a) = c.nested(o, "", "author", true) {
        author(&mut c, a);
    }
    let schema = c.string(o, "", "schema", false, 1, 64);
    if let Some(s) = schema
        && s != "whatsapp"
    {
        c.fail("schema", "must be whatsapp");
    }
    if let Some(content) = c.nested(o, "", "content", true) {
        message_content(&mut c, content, schema);
    }
    if let Some(d) = c.nested(o, "", "destination", false) {
        let id = c.string(d, "destination", "integrationId", false, 1, 64);
        let ty = c.string(d, "destination", "integrationType", false, 1, 64);
        if id.is_none() && ty.is_none() {
            c.fail("destination", "must have integrationId or integrationType");
        }
    }
    c.nested(o, "", "override", false);
    c.metadata(o, "");
    c.finish()
}

/// `activityPost`: an author and the activity's type; a user may only mark the conversation
/// read (`activityTypes.type`).
pub(crate) fn activity_post(body: &Value) -> ApiResult<()> {
    let mut c = Check::new();
    let Some(o) = c.object(body, "") else {
        return c.finish();
    };
    let user = match c.nested(o, "", "author", true) {
        Some(a) => {
            author(&mut c, a);
            a.get("type").and_then(Value::as_str) == Some("user")
        }
        None => false,
    };
    let kind = c.one_of(
        o,
        "",
        "type",
        true,
        &["conversation:read", "typing:start", "typing:stop"],
    );
    if user && kind.is_some_and(|k| k != "conversation:read") {
        c.fail("type", "a user author may only send conversation:read");
    }
    c.finish()
}

/// `author`: a business, or a user named by id or externalId.
fn author(c: &mut Check, a: &Map<String, Value>) {
    let kind = c.one_of(a, "author", "type", true, &["business", "user"]);
    if let Some(subs) = c.array(a, "author", "subtypes", false, 1, 1) {
        for (i, s) in subs.iter().enumerate() {
            if !matches!(s.as_str(), Some("AI" | "activity")) {
                c.fail(
                    &format!("author.subtypes[{i}]"),
                    "must be one of: AI, activity",
                );
            }
        }
    }
    let uid = c.string(a, "author", "userId", false, 1, 1024);
    let ext = c.string(a, "author", "userExternalId", false, 1, 1024);
    c.string(a, "author", "brandId", false, 1, 24);
    c.string(a, "author", "displayName", false, 1, 256);
    c.uri(a, "author", "avatarUrl", false, 2048);
    match kind {
        Some("user") if uid.is_none() && ext.is_none() => c.fail(
            "author",
            "must have userId or userExternalId when type is user",
        ),
        Some("business") if uid.is_some() || ext.is_some() => c.fail(
            "author",
            "userId and userExternalId apply only when type is user",
        ),
        _ => {}
    }
}

/// `content`, by its type (a flat `match` over the sendable types, one arm each); a template
/// needs `schema: whatsapp`.
fn message_content(c: &mut Check, content: &Map<String, Value>, schema: Option<&str>) {
    let kind = match content.get("type").and_then(Value::as_str) {
        Some("formResponse") => {
            c.fail(
                "content.type",
                "formResponse cannot be sent through the API",
            );
            None
        }
        _ => c.one_of(content, "content", "type", true, SENDABLE_TYPES),
    };
    match kind {
        Some("text") => {
            let (text, html, md) = rich_text(c, content);
            let n = actions(c, content, "content", 0, 100, ACTION_TYPES, false);
            c.string(content, "content", "payload", false, 0, 4096);
            if !text && !html && !md && n == 0 {
                c.fail(
                    "content.text",
                    "is required unless actions, htmlText or markdownText is given",
                );
            }
        }
        Some("image") => {
            c.uri(content, "content", "mediaUrl", true, 2048);
            c.string(content, "content", "altText", false, 0, 128);
            rich_text(c, content);
            actions(c, content, "content", 0, 100, ACTION_TYPES, false);
        }
        Some("file") => {
            c.uri(content, "content", "mediaUrl", true, 2048);
            c.string(content, "content", "altText", false, 0, 128);
            rich_text(c, content);
        }
        Some("carousel") => {
            items(c, content, "content");
            if let Some(ds) = c.nested(content, "content", "displaySettings", false) {
                c.one_of(
                    ds,
                    "content.displaySettings",
                    "imageAspectRatio",
                    false,
                    &["horizontal", "square"],
                );
            }
            c.boolean(content, "content", "blockChatInput", false);
        }
        Some("list") => {
            items(c, content, "content");
            actions(c, content, "content", 1, 10, ACTION_SUBSET, false);
            c.boolean(content, "content", "blockChatInput", false);
        }
        Some("location") => location(c, content),
        Some("form") => form(c, content),
        Some("template") => {
            c.nested(content, "content", "template", true);
            c.boolean(content, "content", "blockChatInput", false);
            if schema != Some("whatsapp") {
                c.fail("schema", "must be whatsapp for template content");
            }
        }
        _ => {}
    }
}

/// A location's coordinates (within range) and its optional address and name.
fn location(c: &mut Check, content: &Map<String, Value>) {
    if let Some(co) = c.nested(content, "content", "coordinates", true) {
        if let Some(lat) = c.number(co, "content.coordinates", "lat", true)
            && !(-90.0..=90.0).contains(&lat)
        {
            c.fail("content.coordinates.lat", "must be from -90 to 90");
        }
        if let Some(long) = c.number(co, "content.coordinates", "long", true)
            && !(-180.0..=180.0).contains(&long)
        {
            c.fail("content.coordinates.long", "must be from -180 to 180");
        }
    }
    if let Some(lo) = c.nested(content, "content", "location", false) {
        c.string(lo, "content.location", "address", false, 0, 1024);
        c.string(lo, "content.location", "name", false, 0, 1024);
    }
    c.boolean(content, "content", "blockChatInput", false);
}

fn form(c: &mut Check, content: &Map<String, Value>) {
    c.string(content, "content", "text", false, 0, 4096);
    c.boolean(content, "content", "blockChatInput", false);
    let Some(fields) = c.array(content, "content", "fields", true, 1, 20) else {
        return;
    };
    let mut names = std::collections::HashSet::new();
    for (i, f) in fields.iter().enumerate() {
        let p = format!("content.fields[{i}]");
        let Some(fo) = c.object(f, &p) else { continue };
        let kind = c.one_of(fo, &p, "type", true, &["email", "select", "text"]);
        if let Some(name) = c.string(fo, &p, "name", true, 1, 128)
            && !names.insert(name)
        {
            c.fail(&join(&p, "name"), "must be unique within the form");
        }
        c.string(fo, &p, "label", true, 1, 128);
        c.string(fo, &p, "placeholder", false, 1, 128);
        let min = c.integer(fo, &p, "minSize", false, false, 1..=256);
        let max = c.integer(fo, &p, "maxSize", false, false, 1..=256);
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            c.fail(&join(&p, "minSize"), "must not be greater than maxSize");
        }
        let options = c.array(fo, &p, "options", false, 0, 200);
        if kind == Some("select") && options.is_none_or(|o| o.is_empty()) {
            c.fail(
                &join(&p, "options"),
                "is required (at least 1) for select fields",
            );
        }
        for (j, opt) in options.into_iter().flatten().enumerate() {
            let op = format!("{p}.options[{j}]");
            if let Some(oo) = c.object(opt, &op) {
                c.string(oo, &op, "label", true, 1, 128);
                c.string(oo, &op, "name", true, 1, 128);
            }
        }
    }
}
