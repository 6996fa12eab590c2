//! Tool schemas every client can read.
//!
//! schemars writes JSON Schema 2020-12 with `$ref`/`$defs`, boolean subschemas (`true` for any
//! JSON), its own `format`s (`uint32`, `double`) and `anyOf [T, null]` for optional fields.
//! Several MCP clients keep only `properties` and `required`, fail on `$ref`, or warn on unknown
//! formats. [`portable`] rewrites a schema into the subset they all read:
//!
//! - every `$ref` inlined, no `$defs`, no `$schema` (MCP's default dialect is 2020-12);
//! - no boolean subschema: `true` becomes `{}`, `false` becomes `{"not": {}}`, and
//!   `additionalProperties: true` (the default anyway) is dropped; `additionalProperties: false`
//!   stays;
//! - only JSON Schema's own `format`s; integer formats become `minimum`/`maximum`;
//! - `oneOf` of constants becomes an `enum`;
//! - in input schemas ([`Direction::Input`]), optional fields lose their `null` alternative
//!   (a client may still send `null`: the argument decoder reads it as absent), and
//!   `"default": null` goes.

use serde_json::{Map, Value, json};

/// Formats JSON Schema 2020-12 defines (§7.3 of the validation vocabulary).
pub const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Inlining stops this deep (a guard against recursive definitions; the tools have none).
const MAX_DEPTH: usize = 24;

/// Whether a schema describes what a client sends or what the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Input,
    Output,
}

/// `schema` rewritten as described in the module docs.
pub(crate) fn portable(schema: &Map<String, Value>, direction: Direction) -> Map<String, Value> {
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match rewrite(&Value::Object(schema.clone()), &defs, direction, 0) {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// The definition a `$ref` names (`#/$defs/Name`).
fn target<'a>(reference: &str, defs: &'a Map<String, Value>) -> Option<&'a Value> {
    defs.get(reference.strip_prefix("#/$defs/")?)
}

fn rewrite(schema: &Value, defs: &Map<String, Value>, dir: Direction, depth: usize) -> Value {
    let mut o = match schema {
        Value::Bool(true) => return json!({}),
        Value::Bool(false) => return json!({"not": {}}),
        Value::Object(o) => o.clone(),
        other => return other.clone(),
    };
    if depth > MAX_DEPTH {
        return json!({});
    }
    match dir {
        Direction::Input => drop_null(&mut o),
        Direction::Output => split_null(&mut o),
    }
    // `$ref` (with siblings such as a description): the definition, the siblings on top.
    if let Some(reference) = o.remove("$ref").as_ref().and_then(Value::as_str)
        && let Some(Value::Object(def)) = target(reference, defs)
    {
        let mut merged = def.clone();
        merged.extend(o);
        o = merged;
    }
    o.remove("$defs");
    o.remove("$schema");
    if dir == Direction::Input && o.get("default") == Some(&Value::Null) {
        o.remove("default");
    }
    if o.get("additionalProperties") == Some(&Value::Bool(true)) {
        o.remove("additionalProperties");
    }
    standard_format(&mut o);
    for key in ["properties", "$defs", "patternProperties"] {
        if let Some(Value::Object(props)) = o.get_mut(key) {
            for v in props.values_mut() {
                *v = rewrite(v, defs, dir, depth + 1);
            }
        }
    }
    for key in ["items", "additionalProperties", "not", "contains"] {
        if let Some(v) = o.get_mut(key)
            && !(key == "additionalProperties" && *v == Value::Bool(false))
        {
            *v = rewrite(v, defs, dir, depth + 1);
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(list)) = o.get_mut(key) {
            for v in list.iter_mut() {
                *v = rewrite(v, defs, dir, depth + 1);
            }
        }
    }
    constants_to_enum(&mut o);
    if let Some(Value::String(d)) = o.get_mut("description") {
        *d = one_line(d);
    }
    Value::Object(o)
}

/// Input schemas: `type: [T, "null"]` becomes `type: T`, and `anyOf: [S, {type: null}]` becomes
/// `S` (with the outer description).
fn drop_null(o: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = o.get("type") {
        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        let kept = match kept.len() {
            1 => kept[0].clone(),
            _ => Value::Array(kept),
        };
        o.insert("type".into(), kept);
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(list)) = o.get(key) else {
            continue;
        };
        let is_null = |v: &Value| v.get("type") == Some(&Value::from("null"));
        let rest: Vec<Value> = list.iter().filter(|v| !is_null(v)).cloned().collect();
        if rest.len() == list.len() {
            continue;
        }
        o.remove(key);
        if let [only] = rest.as_slice()
            && let Value::Object(inner) = only
        {
            for (k, v) in inner {
                o.entry(k.clone()).or_insert_with(|| v.clone());
            }
        } else {
            o.insert(key.into(), Value::Array(rest));
        }
    }
}

/// Output schemas: `type: [T, "null"]` becomes `anyOf: [{type: T}, {type: "null"}]`, which
/// clients that map schemas onto a single-`type` dialect read.
fn split_null(o: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = o.get("type") else {
        return;
    };
    let branches: Vec<Value> = types.iter().map(|t| json!({"type": t})).collect();
    o.remove("type");
    match o.get_mut("anyOf") {
        Some(Value::Array(existing)) => existing.extend(branches),
        _ => {
            o.insert("anyOf".into(), Value::Array(branches));
        }
    }
}

/// Drops formats JSON Schema does not define; an integer format becomes its range.
fn standard_format(o: &mut Map<String, Value>) {
    let Some(format) = o.get("format").and_then(Value::as_str).map(str::to_owned) else {
        return;
    };
    if STANDARD_FORMATS.contains(&format.as_str()) {
        return;
    }
    o.remove("format");
    let range: Option<(i128, i128)> = match format.as_str() {
        "uint8" => Some((0, u8::MAX.into())),
        "uint16" => Some((0, u16::MAX.into())),
        "uint32" => Some((0, u32::MAX.into())),
        "uint64" | "uint" => Some((0, u64::MAX.into())),
        "int8" => Some((i8::MIN.into(), i8::MAX.into())),
        "int16" => Some((i16::MIN.into(), i16::MAX.into())),
        "int32" => Some((i32::MIN.into(), i32::MAX.into())),
        _ => None,
    };
    if let Some((min, max)) = range {
        o.entry("minimum")
            .or_insert_with(|| Value::from(min as i64));
        // Bounds past what a double holds exactly say nothing useful to a client.
        if max <= i128::from(u32::MAX) {
            o.entry("maximum")
                .or_insert_with(|| Value::from(max as i64));
        }
    }
}

/// `oneOf: [{const: a}, {const: b}]` (schemars' documented enums) becomes `enum: [a, b]`.
fn constants_to_enum(o: &mut Map<String, Value>) {
    let Some(Value::Array(list)) = o.get("oneOf") else {
        return;
    };
    let constants: Option<Vec<Value>> = list
        .iter()
        .map(|v| {
            v.get("const")
                .or_else(|| v.get("enum").and_then(|e| e.as_array()?.first()))
                .cloned()
        })
        .collect();
    let Some(constants) = constants else { return };
    o.remove("oneOf");
    if constants.iter().all(Value::is_string) {
        o.insert("type".into(), Value::from("string"));
    }
    o.insert("enum".into(), Value::Array(constants));
}

/// A doc comment's hard line breaks as spaces: what a model reads, in fewer bytes.
fn one_line(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `schema` (anywhere inside) still has what [`portable`] removes: a `$ref`, `$defs`,
/// a boolean subschema or a non-standard format. For tests.
#[cfg(test)]
pub(crate) fn problems(schema: &Value, at: &str, out: &mut Vec<String>) {
    match schema {
        Value::Bool(b) => out.push(format!("{at}: boolean subschema {b}")),
        Value::Object(o) => {
            for key in ["$ref", "$defs"] {
                if o.contains_key(key) {
                    out.push(format!("{at}: {key}"));
                }
            }
            if let Some(f) = o.get("format").and_then(Value::as_str)
                && !STANDARD_FORMATS.contains(&f)
            {
                out.push(format!("{at}: format {f}"));
            }
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("additionalProperties", Value::Bool(false)) => {}
                    ("properties" | "patternProperties", Value::Object(props)) => {
                        for (name, p) in props {
                            problems(p, &format!("{at}.{name}"), out);
                        }
                    }
                    ("items" | "additionalProperties" | "not" | "contains", v) => {
                        problems(v, &format!("{at}/{k}"), out)
                    }
                    ("anyOf" | "oneOf" | "allOf" | "prefixItems", Value::Array(list)) => {
                        for (i, v) in list.iter().enumerate() {
                            problems(v, &format!("{at}/{k}[{i}]"), out);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Every output schema names `trimmed`, which an answer over the server's bound carries
/// ([`crate::mcp::bound`]).
pub(crate) fn admit_trimmed(output: &mut Map<String, Value>) {
    if let Some(Value::Object(properties)) = output.get_mut("properties") {
        properties.insert(
            "trimmed".into(),
            json!({"type": "object", "description": "Present when the answer was over the server's bound (maxChars) and was made to fit: itemsOmitted, stringsCut, listItemsDropped, and nextStep: how to get the rest."}),
        );
    }
}

/// A write tool's output schema made to admit a dry run's answer as well: `dryRun` and
/// `request` join the properties, and the result's own required fields become one of two
/// alternatives (`anyOf`), the other requiring `dryRun` and `request`.
pub(crate) fn admit_dry_run(output: &mut Map<String, Value>) {
    let mut generator = schemars::SchemaGenerator::default();
    let request = generator.subschema_for::<crate::sunco::endpoints::PlannedRequest>();
    let mut request = request.as_object().cloned().unwrap_or_default();
    if let Some(defs) = generator.definitions().get("PlannedRequest") {
        request = defs.as_object().cloned().unwrap_or_default();
    }
    let request = portable(&request, Direction::Output);
    let properties = output
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("an object schema's properties");
    properties.insert(
        "dryRun".into(),
        json!({"type": "boolean", "description": "True when this was a dry run: nothing was sent; `request` is what would have been."}),
    );
    let mut request = Value::Object(request);
    request["description"] =
        json!("With dryRun: the request that would have been sent to Sunshine Conversations.");
    properties.insert("request".into(), request);
    let required = output.remove("required").unwrap_or_else(|| json!([]));
    output.insert(
        "anyOf".into(),
        json!([{"required": required}, {"required": ["dryRun", "request"]}]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_inlined_and_nothing_unportable_is_left() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": {"Kind": {"oneOf": [{"const": "a", "description": "A"}, {"const": "b"}]},
                      "Inner": {"type": "object", "properties": {"n": {"type": "integer", "format": "uint32"}}}},
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "kind": {"$ref": "#/$defs/Kind", "description": "which\none"},
                "inner": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}], "default": null,
                          "description": "optional"},
                "limit": {"type": ["integer", "null"], "format": "uint32", "minimum": 1, "maximum": 100},
                "any": true,
                "meta": {"type": ["object", "null"], "additionalProperties": true}
            }
        });
        let out = Value::Object(portable(schema.as_object().unwrap(), Direction::Input));
        let mut found = vec![];
        problems(&out, "$", &mut found);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(
            out["properties"]["kind"],
            json!({"type": "string", "enum": ["a", "b"], "description": "which one"})
        );
        assert_eq!(
            out["properties"]["inner"]["properties"]["n"],
            json!({"type": "integer", "minimum": 0, "maximum": 4294967295u32})
        );
        assert_eq!(out["properties"]["inner"]["description"], "optional");
        assert_eq!(
            out["properties"]["limit"],
            json!({"type": "integer", "minimum": 1, "maximum": 100})
        );
        assert_eq!(out["properties"]["any"], json!({}));
        assert_eq!(out["properties"]["meta"], json!({"type": "object"}));
        assert_eq!(out["additionalProperties"], false);
    }

    #[test]
    fn output_schemas_keep_null() {
        let schema = json!({"type": "object", "properties": {"x": {"type": ["string", "null"]}}});
        let out = portable(schema.as_object().unwrap(), Direction::Output);
        assert_eq!(
            out["properties"]["x"]["anyOf"],
            json!([{"type": "string"}, {"type": "null"}])
        );
    }
}
