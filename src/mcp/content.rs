//! Checks a message before it goes upstream, so a bad one fails fast with an error naming the
//! field, and nothing is sent.
//!
//! Shape and types come from decoding into the wire types (with the path of the first wrong
//! field); the limits below are the spec's (`messagePost` and its content schemas).

use serde_json::{Map, Value};

use crate::error::CallError;
use crate::sunco::wire::{Action, Content, FormField, Item, Metadata};

const TEXT_MAX: usize = 4096;
const METADATA_MAX_BYTES: usize = 4096;

/// The full content schema, kept for checking (the tool's advertised one is deliberately
/// loose): every branch and field of `content`, each object refusing fields it does not declare.
fn content_schema() -> &'static Map<String, Value> {
    static SCHEMA: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema = schemars::schema_for!(Content);
        let schema = serde_json::to_value(&schema).unwrap_or_default();
        let mut schema = match schema {
            Value::Object(o) => Value::Object(crate::mcp::schema::portable(
                &o,
                crate::mcp::schema::Direction::Input,
            )),
            _ => Value::Object(Map::new()),
        };
        closed(&mut schema);
        match schema {
            Value::Object(o) => o,
            _ => Map::new(),
        }
    })
}

/// Every object schema that declares properties refuses others.
fn closed(schema: &mut Value) {
    match schema {
        Value::Object(o) => {
            if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                o.insert("additionalProperties".into(), Value::Bool(false));
            }
            for v in o.values_mut() {
                closed(v);
            }
        }
        Value::Array(list) => list.iter_mut().for_each(closed),
        _ => {}
    }
}

/// Decodes and checks `content` (the API's content object): first brought to the content
/// schema's form as every argument is ([`crate::mcp::args`]: numbers as strings, JSON text,
/// fields the schema does not declare refused, each error naming its path), then decoded and
/// checked against the spec's limits.
pub fn parse_content(raw: Value) -> Result<Content, CallError> {
    let mut raw = raw;
    crate::mcp::args::conform_at(&mut raw, content_schema(), "content")?;
    let content: Content = match serde_path_to_error::deserialize(&raw) {
        Ok(c) => c,
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." || path.is_empty() {
                culprit(&raw).map_or_else(|| "content".to_owned(), |k| format!("content.{k}"))
            } else {
                format!("content.{path}")
            };
            return Err(CallError::invalid(field, e.into_inner().to_string()));
        }
    };
    check_content(&content)?;
    Ok(content)
}

/// The top-level field that makes `raw` undecodable. Content is tagged by `type`, so the
/// decoder cannot say where inside it failed; leaving each field out in turn tells (an
/// optional field that was wrong then decodes, a required one is then reported missing).
fn culprit(raw: &Value) -> Option<String> {
    let obj = raw.as_object()?;
    let decode_error = |v: &Value| {
        serde_json::from_value::<Content>(v.clone())
            .err()
            .map(|e| e.to_string())
    };
    if !obj.get("type").is_some_and(Value::is_string) {
        return Some("type".into());
    }
    for key in obj.keys().filter(|k| k.as_str() != "type") {
        let mut without = obj.clone();
        without.remove(key);
        match decode_error(&Value::Object(without)) {
            None => return Some(key.clone()),
            Some(msg) if msg.contains(&format!("missing field `{key}`")) => {
                return Some(key.clone());
            }
            Some(_) => {}
        }
    }
    None
}

fn too_long(field: &str, s: &Option<String>, max: usize) -> Result<(), CallError> {
    match s {
        Some(s) if s.chars().count() > max => Err(CallError::invalid(
            field,
            format!("must be at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// A form's fields: 1 to 20, each of a known type, named uniquely, labelled, and a select
/// with its options.
fn check_form(fields: &[FormField]) -> Result<(), CallError> {
    if fields.is_empty() || fields.len() > 20 {
        return Err(CallError::invalid(
            "content.fields",
            "must have from 1 to 20 fields",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, f) in fields.iter().enumerate() {
        let p = format!("content.fields[{i}]");
        if !matches!(f.kind.as_str(), "email" | "select" | "text") {
            return Err(CallError::invalid(
                format!("{p}.type"),
                "must be one of: email, select, text",
            ));
        }
        if f.name.is_empty() || !names.insert(f.name.as_str()) {
            return Err(CallError::invalid(
                format!("{p}.name"),
                "must be non-empty and unique within the form",
            ));
        }
        if f.label.is_empty() {
            return Err(CallError::invalid(
                format!("{p}.label"),
                "must not be empty",
            ));
        }
        if f.kind == "select" && f.options.as_ref().is_none_or(|o| o.is_empty()) {
            return Err(CallError::invalid(
                format!("{p}.options"),
                "is required (at least 1) for select fields",
            ));
        }
    }
    Ok(())
}

/// Checks each kind of content as the API's `content` schema asks (a flat `match` over the
/// kinds, one arm each).
fn check_content(content: &Content) -> Result<(), CallError> {
    match content {
        Content::Text {
            text,
            html_text,
            markdown_text,
            actions,
            ..
        } => {
            too_long("content.text", text, TEXT_MAX)?;
            too_long("content.htmlText", html_text, TEXT_MAX)?;
            too_long("content.markdownText", markdown_text, TEXT_MAX)?;
            rich_text_exclusive(html_text, markdown_text)?;
            let has_actions = actions.as_ref().is_some_and(|a| !a.is_empty());
            let has_text = text.as_deref().is_some_and(|t| !t.is_empty());
            if !has_text && html_text.is_none() && markdown_text.is_none() && !has_actions {
                return Err(CallError::invalid(
                    "content.text",
                    "is required (and not empty) unless actions, htmlText or markdownText is given",
                ));
            }
            check_actions("content.actions", actions.as_deref().unwrap_or(&[]), 100)
        }
        Content::Image {
            media_url,
            text,
            html_text,
            markdown_text,
            actions,
            ..
        } => {
            check_uri("content.mediaUrl", media_url)?;
            too_long("content.text", text, TEXT_MAX)?;
            rich_text_exclusive(html_text, markdown_text)?;
            check_actions("content.actions", actions.as_deref().unwrap_or(&[]), 100)
        }
        Content::File {
            media_url,
            text,
            html_text,
            markdown_text,
            ..
        } => {
            check_uri("content.mediaUrl", media_url)?;
            too_long("content.text", text, TEXT_MAX)?;
            rich_text_exclusive(html_text, markdown_text)
        }
        Content::Carousel { items, .. } => check_items(items),
        Content::List { items, actions, .. } => {
            check_items(items)?;
            check_actions("content.actions", actions.as_deref().unwrap_or(&[]), 10)
        }
        Content::Location { coordinates, .. } => {
            if !(-90.0..=90.0).contains(&coordinates.lat) {
                return Err(CallError::invalid(
                    "content.coordinates.lat",
                    "must be from -90 to 90",
                ));
            }
            if !(-180.0..=180.0).contains(&coordinates.long) {
                return Err(CallError::invalid(
                    "content.coordinates.long",
                    "must be from -180 to 180",
                ));
            }
            Ok(())
        }
        Content::Form { fields, .. } => check_form(fields),
        Content::FormResponse { .. } => Err(CallError::invalid(
            "content.type",
            "formResponse is what users send back; it cannot be sent through the API",
        )),
        Content::Template { template, .. } => {
            if template.is_empty() {
                return Err(CallError::invalid(
                    "content.template",
                    "must be the WhatsApp template object (name, language, components)",
                ));
            }
            Ok(())
        }
    }
}

fn rich_text_exclusive(html: &Option<String>, md: &Option<String>) -> Result<(), CallError> {
    if html.is_some() && md.is_some() {
        return Err(CallError::invalid(
            "content.markdownText",
            "cannot be combined with content.htmlText",
        ));
    }
    Ok(())
}

pub(crate) fn check_uri(field: &str, uri: &str) -> Result<(), CallError> {
    match url::Url::parse(uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && uri.len() <= 2048 => Ok(()),
        _ => Err(CallError::invalid(
            field,
            "must be an absolute http(s) URL of at most 2048 characters",
        )),
    }
}

fn check_items(items: &[Item]) -> Result<(), CallError> {
    if items.is_empty() || items.len() > 10 {
        return Err(CallError::invalid(
            "content.items",
            "must have from 1 to 10 items",
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let p = format!("content.items[{i}]");
        if item.title.is_empty() || item.title.chars().count() > 128 {
            return Err(CallError::invalid(
                format!("{p}.title"),
                "must be 1 to 128 characters",
            ));
        }
        if let Some(u) = &item.media_url {
            check_uri(&format!("{p}.mediaUrl"), u)?;
        }
        if item.actions.is_empty() || item.actions.len() > 3 {
            return Err(CallError::invalid(
                format!("{p}.actions"),
                "must have from 1 to 3 actions",
            ));
        }
        check_actions(&format!("{p}.actions"), &item.actions, 3)?;
    }
    Ok(())
}

fn check_actions(path: &str, actions: &[Action], max: usize) -> Result<(), CallError> {
    if actions.len() > max {
        return Err(CallError::invalid(
            path,
            format!("must have at most {max} actions"),
        ));
    }
    for (i, a) in actions.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let (text, uri) = match a {
            Action::Buy { text, .. }
            | Action::LocationRequest { text, .. }
            | Action::Postback { text, .. }
            | Action::Reply { text, .. } => (text, None),
            Action::Link { text, uri, .. } | Action::Webview { text, uri, .. } => (text, Some(uri)),
        };
        if text.is_empty() {
            return Err(CallError::invalid(format!("{p}.text"), "must not be empty"));
        }
        if let Some(uri) = uri {
            check_uri(&format!("{p}.uri"), uri)?;
        }
    }
    Ok(())
}

/// An optional text of 1 to 100 characters (`displayName`, `description` of a conversation).
pub(crate) fn check_short_text(field: &str, text: &Option<String>) -> Result<(), CallError> {
    match text {
        Some(t) if t.trim().is_empty() || t.chars().count() > 100 => Err(CallError::invalid(
            field,
            "must be 1 to 100 characters (leave it out for none)",
        )),
        _ => Ok(()),
    }
}

/// `signedUpAt`: ISO 8601 (`YYYY-MM-DDThh:mm:ss.sssZ`), as the spec's `signedUpAt` says.
pub(crate) fn check_timestamp(field: &str, at: &Option<String>) -> Result<(), CallError> {
    match at {
        Some(t) if crate::sunco::ids::parse_timestamp(t).is_none() => Err(CallError::invalid(
            field,
            format!("{t:?} is not an ISO 8601 time such as 2020-05-21T15:53:30.197Z"),
        )),
        _ => Ok(()),
    }
}

/// The metadata field that carries a hand-over summary (`summary` of `pass_control` and
/// `offer_control`) to the switchboard integration that receives the conversation.
pub(crate) const SUMMARY_FIELD: &str = "mcp.summary";

/// A control call's metadata with the caller's `summary` in [`SUMMARY_FIELD`]; the errors name
/// `summary` (blank, set twice, or too long with the rest) or the metadata field at fault.
pub(crate) fn with_summary(
    metadata: Option<Metadata>,
    summary: Option<String>,
) -> Result<Option<Metadata>, CallError> {
    check_metadata("metadata", &metadata)?;
    let Some(summary) = summary else {
        return Ok(metadata);
    };
    let summary = summary.trim();
    if summary.is_empty() {
        return Err(CallError::invalid(
            "summary",
            "is blank: leave it out, or say what the receiving agent should know",
        ));
    }
    let mut metadata = metadata.unwrap_or_default();
    if metadata.contains_key(SUMMARY_FIELD) {
        return Err(CallError::invalid(
            format!("metadata.{SUMMARY_FIELD}"),
            "give the summary as summary, not in metadata",
        ));
    }
    metadata.insert(SUMMARY_FIELD.to_owned(), Value::String(summary.to_owned()));
    let size = serde_json::to_vec(&metadata)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > METADATA_MAX_BYTES {
        return Err(CallError::invalid(
            "summary",
            format!(
                "with metadata it must fit the API's {METADATA_MAX_BYTES} bytes of metadata as JSON (together they are {size}): shorten it"
            ),
        ));
    }
    Ok(Some(metadata))
}

/// Flat metadata (string, number or boolean values) of at most 4 KB, as the API requires.
pub(crate) fn check_metadata(field: &str, metadata: &Option<Metadata>) -> Result<(), CallError> {
    let Some(m) = metadata else { return Ok(()) };
    for (k, v) in m {
        if !(v.is_string() || v.is_number() || v.is_boolean()) {
            return Err(CallError::invalid(
                format!("{field}.{k}"),
                "metadata values must be strings, numbers or booleans",
            ));
        }
    }
    let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > METADATA_MAX_BYTES {
        return Err(CallError::invalid(
            field,
            format!("must be at most {METADATA_MAX_BYTES} bytes as JSON (it is {size})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(v: Value) -> String {
        match parse_content(v).unwrap_err() {
            CallError::InvalidArgument { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_the_wrong_field() {
        assert_eq!(field_of(json!({"type": "hologram"})), "content.type");
        assert_eq!(
            field_of(json!({"type": "text", "text": ""})),
            "content.text"
        );
        assert_eq!(
            field_of(
                json!({"type": "carousel", "items": [{"title": "A", "actions": [
                {"type": "link", "text": "Go", "uri": "not a url"}]}]})
            ),
            "content.items[0].actions[0].uri"
        );
        assert_eq!(
            field_of(json!({"type": "image", "mediaUrl": 5})),
            "content.mediaUrl"
        );
        assert_eq!(
            field_of(json!({"type": "location", "coordinates": {"lat": 91, "long": 0}})),
            "content.coordinates.lat"
        );
        assert_eq!(
            field_of(json!({"type": "form", "fields": [
                {"type": "select", "name": "a", "label": "A"}]})),
            "content.fields[0].options"
        );
    }

    #[test]
    fn accepts_every_sendable_type() {
        for v in [
            json!({"type": "text", "text": "hi"}),
            json!({"type": "image", "mediaUrl": "https://example.org/a.png"}),
            json!({"type": "file", "mediaUrl": "https://example.org/a.pdf"}),
            json!({"type": "carousel", "items": [{"title": "A", "actions": [
                {"type": "postback", "text": "Pick", "payload": "A"}]}]}),
            json!({"type": "list", "items": [{"title": "A", "actions": [
                {"type": "postback", "text": "Pick", "payload": "A"}]}]}),
            json!({"type": "location", "coordinates": {"lat": 45.5, "long": -73.5}}),
            json!({"type": "form", "fields": [{"type": "text", "name": "n", "label": "Name"}]}),
            json!({"type": "template", "template": {"name": "hello", "language": {"code": "en"}}}),
        ] {
            assert!(parse_content(v.clone()).is_ok(), "{v}");
        }
    }

    #[test]
    fn metadata_must_be_flat() {
        let m: Metadata = serde_json::from_value(json!({"a": {"b": 1}})).unwrap();
        assert!(check_metadata("metadata", &Some(m)).is_err());
    }
}
