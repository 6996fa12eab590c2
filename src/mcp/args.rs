//! Tool arguments as clients really send them: one decoder for every tool.
//!
//! Clients differ in how they send arguments: some send integers as strings (`"limit": "5"`),
//! arrays and objects as JSON text (`"types": "[\"web\"]"`), and `null` for every optional
//! argument they leave unset. Before a tool sees its arguments, [`conform`] walks them against
//! the tool's (portable) input schema and takes these forms as meant:
//!
//! | schema says | accepted besides the value itself |
//! | --- | --- |
//! | `integer` | a string holding a whole number, an integral float (`5.0`) |
//! | `number` | a string holding a number |
//! | `boolean` | the strings `true` and `false` |
//! | `array`, `object` | JSON text of one |
//! | optional argument (of the tool itself) | `null`, read as absent |
//!
//! Everything else that does not fit (a wrong type, an unknown argument, a missing required
//! one, a fractional number for an integer, a value out of range or outside an `enum`) is an
//! `invalid_argument` error naming the field, checked before any upstream call. Then
//! [`Parameters`] decodes the arguments into the tool's type; a rare decoding error is reported
//! the same way, with the path serde gives.

use std::fmt::Write as _;

use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use crate::error::CallError;

/// The marker in a JSON-RPC error's `data` that says the error is an argument error the tool
/// handler turns into a tool result.
const ARGUMENT_ERROR: &str = "invalid_argument";

/// A tool's arguments, decoded after [`conform`]. Named as rmcp names its own wrapper, which the
/// tool macros look for to derive the input schema from `T`.
pub(crate) struct Parameters<T>(pub T);

impl<T: schemars::JsonSchema> schemars::JsonSchema for Parameters<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, rmcp::ErrorData> {
        let arguments = Value::Object(context.arguments.take().unwrap_or_default());
        serde_path_to_error::deserialize::<_, T>(arguments)
            .map(Parameters)
            .map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." { String::new() } else { field };
                rejected(&CallError::invalid(field, e.into_inner().to_string()))
            })
    }
}

/// An argument error as the JSON-RPC error an extractor returns; [`argument_error`] reads it
/// back.
pub(crate) fn rejected(e: &CallError) -> rmcp::ErrorData {
    rmcp::ErrorData::invalid_params(e.to_string(), Some(e.to_json()))
}

/// The tool error JSON inside a JSON-RPC error made by [`rejected`].
pub(crate) fn argument_error(e: &rmcp::ErrorData) -> Option<&Value> {
    e.data
        .as_ref()
        .filter(|d| d.get("error").and_then(Value::as_str) == Some(ARGUMENT_ERROR))
}

/// Brings `arguments` to the form `schema` (a tool's portable input schema) describes, as the
/// module docs say, or names the first argument that cannot be.
pub(crate) fn conform(
    arguments: &mut Map<String, Value>,
    schema: &Map<String, Value>,
) -> Result<(), CallError> {
    let mut v = Value::Object(std::mem::take(arguments));
    let result = conform_value(&mut v, schema, "");
    if let Value::Object(o) = v {
        *arguments = o;
    }
    result
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// The JSON types a schema allows (`type` as a string or a list); empty when it does not say.
fn types(schema: &Map<String, Value>) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn fits(v: &Value, allowed: &[&str]) -> bool {
    let t = type_of(v);
    allowed.is_empty() || allowed.contains(&t) || (t == "integer" && allowed.contains(&"number"))
}

/// A whole number from a float that is one (`5.0`), else `None`.
fn integral(f: f64) -> Option<Value> {
    if f.fract() != 0.0 || !f.is_finite() || f.abs() > 9.0e15 {
        return None;
    }
    Some(Value::Number(Number::from(f as i64)))
}

/// The value a client meant by `v`, in one of the `allowed` types, if the forms in the module
/// docs give one.
fn coerced(v: &Value, allowed: &[&str]) -> Option<Value> {
    let want = |t: &str| allowed.contains(&t);
    match v {
        Value::String(s) => {
            let s = s.trim();
            if want("integer") {
                if let Ok(n) = s.parse::<i64>() {
                    return Some(Value::from(n));
                }
                if let Ok(n) = s.parse::<u64>() {
                    return Some(Value::from(n));
                }
                if let Some(n) = s.parse::<f64>().ok().and_then(integral) {
                    return Some(n);
                }
            }
            if want("number")
                && let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64)
            {
                return Some(Value::Number(n));
            }
            if want("boolean") {
                match s {
                    "true" => return Some(Value::Bool(true)),
                    "false" => return Some(Value::Bool(false)),
                    _ => {}
                }
            }
            if (want("array") && s.starts_with('[')) || (want("object") && s.starts_with('{')) {
                let parsed: Value = serde_json::from_str(s).ok()?;
                return fits(&parsed, allowed).then_some(parsed);
            }
            None
        }
        Value::Number(n) if want("integer") && !n.is_i64() && !n.is_u64() => {
            n.as_f64().and_then(integral)
        }
        _ => None,
    }
}

/// What a type list means, for an error message.
fn described(allowed: &[&str]) -> String {
    let names: Vec<&str> = allowed
        .iter()
        .map(|t| match *t {
            "integer" => "a whole number",
            "number" => "a number",
            "boolean" => "true or false",
            "string" => "a string",
            "array" => "an array",
            "object" => "an object",
            other => other,
        })
        .collect();
    names.join(" or ")
}

/// [`conform`] for one value at path `at` (`content`, `author.type`): the same forms taken,
/// the same errors naming the field below `at`.
pub(crate) fn conform_at(
    v: &mut Value,
    schema: &Map<String, Value>,
    at: &str,
) -> Result<(), CallError> {
    conform_value(v, schema, at)
}

/// The branch of a `oneOf`/`anyOf` that `v` is meant for: the one whose `type` property names
/// `v`'s `type` (a tagged union, such as content or actions), else the first that `v` fits.
fn branch<'a>(
    v: &Value,
    branches: &'a [Value],
    at: &str,
) -> Result<&'a Map<String, Value>, CallError> {
    let objects = branches.iter().filter_map(Value::as_object);
    let tag = |b: &Map<String, Value>| -> Option<Vec<Value>> {
        let t = b.get("properties")?.get("type")?;
        t.get("const")
            .map(|c| vec![c.clone()])
            .or_else(|| t.get("enum")?.as_array().cloned())
    };
    let tags: Vec<Value> = objects.clone().filter_map(tag).flatten().collect();
    if !tags.is_empty() {
        let given = v.get("type").cloned().unwrap_or(Value::Null);
        return objects
            .clone()
            .find(|b| tag(b).is_some_and(|t| t.contains(&given)))
            .ok_or_else(|| {
                let list: Vec<String> = tags.iter().map(Value::to_string).collect();
                CallError::invalid(
                    join(at, "type"),
                    format!("must be one of {}, got {given}", list.join(", ")),
                )
            });
    }
    let mut first_error = None;
    for b in objects.clone() {
        match conform_value(&mut v.clone(), b, at) {
            Ok(()) => return Ok(b),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| CallError::invalid(at, "fits none of the allowed forms")))
}

fn conform_value(v: &mut Value, schema: &Map<String, Value>, at: &str) -> Result<(), CallError> {
    if let Some(Value::Array(branches)) = schema.get("oneOf").or_else(|| schema.get("anyOf")) {
        let chosen = branch(v, branches, at)?;
        return conform_value(v, chosen, at);
    }
    let allowed = types(schema);
    if !fits(v, &allowed) {
        match coerced(v, &allowed) {
            Some(c) => *v = c,
            None => {
                let got = match v {
                    Value::Null => "null (leave the field out instead)".to_owned(),
                    Value::Number(_) | Value::Bool(_) => format!("{v}"),
                    Value::String(s) if s.len() <= 40 => format!("the string {s:?}"),
                    other => format!("{} {}", article(type_of(other)), type_of(other)),
                };
                return Err(CallError::invalid(
                    at,
                    format!("must be {}, got {got}", described(&allowed)),
                ));
            }
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(v)
    {
        let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        return Err(CallError::invalid(
            at,
            format!("must be one of {}, got {v}", list.join(", ")),
        ));
    }
    if let Some(n) = v.as_f64() {
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        let (min, max) = (bound("minimum"), bound("maximum"));
        if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
            let mut range = String::new();
            match (min, max) {
                (Some(a), Some(b)) => {
                    let _ = write!(range, "from {a} to {b}");
                }
                (Some(a), None) => {
                    let _ = write!(range, "at least {a}");
                }
                (None, Some(b)) => {
                    let _ = write!(range, "at most {b}");
                }
                (None, None) => {}
            }
            return Err(CallError::invalid(at, format!("must be {range}, got {v}")));
        }
    }
    match v {
        Value::Object(o) => conform_object(o, schema, at),
        Value::Array(items) => {
            if let Some(Value::Object(item_schema)) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    conform_value(item, item_schema, &format!("{at}[{i}]"))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn article(t: &str) -> &'static str {
    if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn conform_object(
    o: &mut Map<String, Value>,
    schema: &Map<String, Value>,
    at: &str,
) -> Result<(), CallError> {
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    // `null` for an optional argument means "not given". Deeper down, `null` is a value like
    // any other, refused where the schema does not allow it (a null metadata value, a null
    // profile field: taking it as "absent" would claim a change that was not made).
    if at.is_empty() {
        o.retain(|k, v| !v.is_null() || required.contains(&k.as_str()) || !props.contains_key(k));
    }
    for (key, value) in o.iter_mut() {
        match (props.get(key), schema.get("additionalProperties")) {
            (Some(Value::Object(p)), _) => conform_value(value, p, &join(at, key))?,
            (None, Some(Value::Bool(false))) => {
                let known: Vec<&str> = props.keys().map(String::as_str).collect();
                return Err(CallError::invalid(
                    join(at, key),
                    format!(
                        "is not an argument here; the arguments are: {}",
                        known.join(", ")
                    ),
                ));
            }
            (None, Some(Value::Object(p))) => conform_value(value, p, &join(at, key))?,
            _ => {}
        }
    }
    for name in required {
        match o.get(name) {
            None => return Err(CallError::invalid(join(at, name), "is required")),
            Some(Value::Null) => {
                return Err(CallError::invalid(
                    join(at, name),
                    "is required and cannot be null",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Map<String, Value> {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                "ratio": {"type": "number"},
                "flag": {"type": "boolean"},
                "types": {"type": "array", "items": {"type": "string"}},
                "kind": {"type": "string", "enum": ["personal", "sdkGroup"]},
                "profile": {"type": "object", "additionalProperties": false,
                            "properties": {"email": {"type": "string"}}}
            }
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn run(args: Value) -> Result<Value, CallError> {
        let mut o = args.as_object().cloned().unwrap();
        conform(&mut o, &schema()).map(|()| Value::Object(o))
    }

    fn field_of(args: Value) -> String {
        match run(args) {
            Err(CallError::InvalidArgument { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_forms_clients_send_are_taken_as_meant() {
        let out = run(
            json!({"id": "a", "limit": "5", "ratio": "0.5", "flag": "true",
            "types": "[\"web\",\"messenger\"]", "profile": "{\"email\":\"a@b.c\"}",
            "kind": null}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"id": "a", "limit": 5, "ratio": 0.5, "flag": true,
                   "types": ["web", "messenger"], "profile": {"email": "a@b.c"}})
        );
        assert_eq!(run(json!({"id": "a", "limit": 7.0})).unwrap()["limit"], 7);
        assert_eq!(run(json!({"id": "a", "limit": " 9 "})).unwrap()["limit"], 9);
    }

    #[test]
    fn everything_else_names_the_field() {
        assert_eq!(field_of(json!({"id": "a", "limit": 2.5})), "limit");
        assert_eq!(field_of(json!({"id": "a", "limit": "five"})), "limit");
        assert_eq!(field_of(json!({"id": "a", "limit": 0})), "limit");
        assert_eq!(field_of(json!({"id": "a", "types": "web"})), "types");
        assert_eq!(field_of(json!({"id": "a", "types": [1]})), "types[0]");
        assert_eq!(field_of(json!({"id": "a", "kind": "group"})), "kind");
        assert_eq!(field_of(json!({"id": "a", "nope": 1})), "nope");
        assert_eq!(
            field_of(json!({"id": "a", "profile": {"mail": "x"}})),
            "profile.mail"
        );
        assert_eq!(field_of(json!({"limit": 1})), "id");
        assert_eq!(field_of(json!({"id": null})), "id");
        assert_eq!(field_of(json!({"id": 5})), "id");
        assert_eq!(
            field_of(json!({"id": "a", "profile": {"email": null}})),
            "profile.email"
        );
    }

    #[test]
    fn tagged_unions_pick_their_branch_by_type() {
        let schema = json!({"oneOf": [
            {"type": "object", "additionalProperties": false, "required": ["type", "lat"],
             "properties": {"type": {"type": "string", "const": "location"}, "lat": {"type": "number"}}},
            {"type": "object", "additionalProperties": false, "required": ["type", "text"],
             "properties": {"type": {"type": "string", "const": "text"}, "text": {"type": "string"}}}
        ]});
        let schema = schema.as_object().unwrap();
        let mut v = json!({"type": "location", "lat": "1.5"});
        conform_at(&mut v, schema, "content").unwrap();
        assert_eq!(v["lat"], 1.5);
        let field = |mut v: Value| match conform_at(&mut v, schema, "content") {
            Err(CallError::InvalidArgument { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(json!({"type": "text", "text": "x", "bogus": 1})),
            "content.bogus"
        );
        assert_eq!(field(json!({"type": "hologram"})), "content.type");
        assert_eq!(field(json!({"type": "text", "text": 5})), "content.text");
    }

    #[test]
    fn a_decoding_error_becomes_a_tool_error_naming_the_field() {
        let e = rejected(&CallError::invalid("limit", "must be a whole number"));
        let data = argument_error(&e).expect("marked");
        assert_eq!(data["field"], "limit");
        assert!(argument_error(&rmcp::ErrorData::invalid_params("other", None)).is_none());
    }
}
