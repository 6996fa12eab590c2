//! The official Sunshine Conversations OpenAPI spec, loaded at test time, and a validator of
//! JSON values against its schemas (OpenAPI 3.0 semantics).
//!
//! The spec is not ours to redistribute, so the project does not carry it: it is read from
//! `SUNCO_OPENAPI_SPEC`, or from `../shared/spec/openapi.yaml` beside the checkout.
//!
//! The validator is stricter than the spec's letter in one way that matters for a simulator: an
//! object may not carry a property its schema does not declare (unless the schema says
//! `additionalProperties: true`), and a response may not carry a `writeOnly` property. That is
//! how an invented or misspelt field is caught.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Map, Value};

pub struct Spec {
    doc: Value,
}

static SPEC: OnceLock<Spec> = OnceLock::new();

pub fn spec() -> &'static Spec {
    SPEC.get_or_init(Spec::load)
}

impl Spec {
    fn load() -> Spec {
        let path = std::env::var_os("SUNCO_OPENAPI_SPEC")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/openapi.yaml")
            });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the official Sunshine Conversations OpenAPI spec is needed to check the simulator, \
                 but {} cannot be read ({e}). Put openapi.yaml (17.12.1, from \
                 zendesk/sunshine-conversations-api-spec) at ../shared/spec/openapi.yaml beside the \
                 checkout, or set SUNCO_OPENAPI_SPEC to its path.",
                path.display()
            )
        });
        let doc: Value = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
        Spec { doc }
    }

    /// A named example from `components/examples`.
    pub fn example(&self, name: &str) -> Value {
        self.doc["components"]["examples"][name]["value"].clone()
    }

    /// The operation (`paths[template][method]`) that a concrete path matches, preferring the
    /// template with the most literal segments.
    pub fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let paths = self.doc["paths"].as_object()?;
        let mut best: Option<(usize, &String, &Value)> = None;
        for (tpl, item) in paths {
            let t: Vec<&str> = tpl.trim_matches('/').split('/').collect();
            if t.len() != segs.len() {
                continue;
            }
            let mut literal = 0;
            let matches = t.iter().zip(&segs).all(|(a, b)| {
                if a.starts_with('{') {
                    !b.is_empty()
                } else {
                    literal += 1;
                    a == b
                }
            });
            let op = &item[method.to_ascii_lowercase()];
            if matches && op.is_object() && best.is_none_or(|(l, _, _)| literal > l) {
                best = Some((literal, tpl, op));
            }
        }
        best.map(|(_, t, op)| (t.clone(), op))
    }

    /// Checks a response body against the schema the spec declares for its operation and status.
    /// A status the operation does not declare (401, 413, 429, 5xx) must carry `errorResponse`.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let (tpl, op) = self
            .operation(method, path)
            .ok_or_else(|| format!("{method} {path} is not an operation of the spec"))?;
        let declared = &op["responses"][status.to_string()];
        let schema = if declared.is_object() {
            declared["content"]["application/json"]["schema"].clone()
        } else if status >= 400 {
            serde_json::json!({"$ref": "#/components/schemas/errorResponse"})
        } else {
            return Err(format!("{method} {tpl} does not declare status {status}"));
        };
        if schema.is_null() {
            return Ok(());
        }
        let errors = self.validate(&schema, body, true);
        if status >= 400 {
            let ok = body["errors"].as_array().is_some_and(|a| {
                !a.is_empty()
                    && a.iter()
                        .all(|e| e["code"].is_string() && e["title"].is_string())
            });
            if !ok {
                return Err(format!(
                    "{method} {tpl} {status}: error body must be {{errors:[{{code,title}}]}}: {body}"
                ));
            }
            if status != 400 && a_len(body) != 1 {
                return Err(format!(
                    "{method} {tpl} {status}: only a 400 may carry several errors"
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{method} {tpl} {status} does not match the spec:\n  {}\nbody: {body}",
                errors.join("\n  ")
            ))
        }
    }

    /// Validates a request body against the spec's request schema of an operation.
    pub fn check_request(&self, method: &str, path: &str, body: &Value) -> Vec<String> {
        let Some((_, op)) = self.operation(method, path) else {
            return vec![format!("{method} {path} is not an operation of the spec")];
        };
        let schema = op["requestBody"]["content"]["application/json"]["schema"].clone();
        self.validate(&schema, body, false)
    }

    /// Validates a webhook envelope against the spec's `x-webhooks` request body.
    /// The schema of each webhook event type (`x-webhooks`' `events.items.anyOf`), by the
    /// event type its `title` names.
    pub fn event_schemas(&self) -> Vec<(String, Value)> {
        let any = &self.doc["x-webhooks"]["Webhook Event"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["events"]["items"]["anyOf"];
        any.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let (schema, _) = resolve(&self.doc, s);
                Some((schema["title"].as_str()?.to_owned(), schema.clone()))
            })
            .collect()
    }

    /// A value `schema` allows: with every property (`full`) or only the required ones, each
    /// filled from the spec's own examples and enums where it has them.
    pub fn sample(&self, schema: &Value, full: bool) -> Value {
        self.sample_at(schema, full, 0)
    }

    fn sample_at(&self, schema: &Value, full: bool, depth: usize) -> Value {
        let (s, _) = resolve(&self.doc, schema);
        if let Some(parts) = s["allOf"].as_array() {
            let mut merged = serde_json::Map::new();
            for part in parts {
                match self.sample_at(part, full, depth) {
                    Value::Object(o) => merged.extend(o),
                    // `allOf: [$ref: a string or boolean schema]`, a description beside it.
                    other => return other,
                }
            }
            if s.get("properties").is_none() {
                return Value::Object(merged);
            }
            if let Value::Object(o) = self.sample_at(&strip_all_of(s), full, depth) {
                merged.extend(o);
            }
            return Value::Object(merged);
        }
        if let Some(first) = s["oneOf"]
            .as_array()
            .or(s["anyOf"].as_array())
            .and_then(|b| b.first())
        {
            return self.sample_at(first, full, depth);
        }
        if let Some(e) = s["enum"].as_array().and_then(|e| e.first()) {
            return e.clone();
        }
        // A discriminator's value is the branch's default (`type: {default: text}`).
        if let Some(d) = s.get("default").filter(|d| !d.is_object() && !d.is_array()) {
            return d.clone();
        }
        let kind = s["type"]
            .as_str()
            .unwrap_or(if s.get("properties").is_some() {
                "object"
            } else {
                "string"
            });
        match kind {
            "object" => {
                let required: Vec<&str> = s["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut out = serde_json::Map::new();
                for (name, prop) in s["properties"].as_object().into_iter().flatten() {
                    let (p, _) = resolve(&self.doc, prop);
                    // Webhooks are answers: no writeOnly property belongs in them.
                    let write_only = p["writeOnly"] == true;
                    let wanted = required.contains(&name.as_str()) || (full && depth < 8);
                    if wanted && !write_only {
                        out.insert(name.clone(), self.sample_at(prop, full, depth + 1));
                    }
                }
                Value::Object(out)
            }
            "array" if full || s["minItems"].as_u64().unwrap_or(0) > 0 => {
                Value::Array(vec![self.sample_at(&s["items"], full, depth + 1)])
            }
            "array" => Value::Array(vec![]),
            "boolean" => Value::Bool(true),
            "integer" | "number" => s
                .get("example")
                .filter(|e| e.is_number())
                .cloned()
                .unwrap_or_else(|| s.get("minimum").cloned().unwrap_or(Value::from(1))),
            _ => s
                .get("example")
                .filter(|e| e.is_string())
                .cloned()
                .unwrap_or_else(|| {
                    Value::from(match s["format"].as_str() {
                        Some("date-time") => "2026-01-01T00:00:00.000Z",
                        Some("uri") => "https://example.org/x",
                        _ => "x",
                    })
                }),
        }
    }

    pub fn check_webhook(&self, body: &Value) -> Vec<String> {
        let schema = self.doc["x-webhooks"]["Webhook Event"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"]
            .clone();
        self.validate(&schema, body, true)
    }

    pub fn validate(&self, schema: &Value, value: &Value, response: bool) -> Vec<String> {
        let mut v = Validator {
            spec: &self.doc,
            errors: Vec::new(),
            response,
        };
        v.check(schema, value, "$", false, &[]);
        v.errors
    }
}

fn a_len(body: &Value) -> usize {
    body["errors"].as_array().map_or(0, Vec::len)
}

/// `schema` without its `allOf` (the rest of an object that has both).
fn strip_all_of(schema: &Value) -> Value {
    let mut s = schema.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("allOf");
    }
    s
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> (&'a Value, Option<String>) {
    let mut s = schema;
    let mut name = None;
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let n = r.rsplit('/').next().unwrap_or_default().to_owned();
        s = &doc["components"]["schemas"][&n];
        name = Some(n);
    }
    (s, name)
}

struct Validator<'a> {
    spec: &'a Value,
    errors: Vec<String>,
    response: bool,
}

impl Validator<'_> {
    fn err(&mut self, at: &str, msg: impl AsRef<str>) {
        self.errors.push(format!("{at}: {}", msg.as_ref()));
    }

    /// Property names an object schema declares; `None` when it admits any property.
    fn declared(&self, schema: &Value) -> Option<HashSet<String>> {
        let (s, _) = resolve(self.spec, schema);
        if s.get("additionalProperties")
            .is_some_and(|a| a != &Value::Bool(false))
            || s.get("oneOf").is_some()
            || s.get("anyOf").is_some()
        {
            return None;
        }
        let props = s.get("properties").and_then(Value::as_object);
        let all = s.get("allOf").and_then(Value::as_array);
        if props.is_none() && all.is_none() {
            // A free-form object admits any property.
            return None;
        }
        let mut out: HashSet<String> = props
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        for member in all.into_iter().flatten() {
            out.extend(self.declared(member)?);
        }
        Some(out)
    }

    fn nullable(&self, schema: &Value) -> bool {
        let (s, _) = resolve(self.spec, schema);
        if schema.get("nullable") == Some(&Value::Bool(true))
            || s.get("nullable") == Some(&Value::Bool(true))
        {
            return true;
        }
        s.get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|all| all.iter().any(|m| self.nullable(m)))
    }

    fn check(
        &mut self,
        schema: &Value,
        value: &Value,
        at: &str,
        in_all_of: bool,
        guard: &[String],
    ) {
        if schema.is_null() || schema.as_object().is_some_and(Map::is_empty) {
            return;
        }
        let nullable_here = schema.get("nullable") == Some(&Value::Bool(true));
        let (s, name) = resolve(self.spec, schema);
        if value.is_null() {
            if !(nullable_here || self.nullable(s)) {
                self.err(at, "is null but the schema is not nullable");
            }
            return;
        }
        // A base schema with a discriminator mapping dispatches to the mapped schema, once.
        if let (Some(d), Some(n)) = (s.get("discriminator"), &name)
            && s.get("oneOf").is_none()
            && !guard.contains(n)
        {
            let prop = d["propertyName"].as_str().unwrap_or("type");
            let tag = value[prop].as_str().unwrap_or_default();
            if let Some(target) = d["mapping"][tag].as_str() {
                let mut g = guard.to_vec();
                g.push(n.clone());
                self.check(
                    &serde_json::json!({"$ref": target}),
                    value,
                    at,
                    in_all_of,
                    &g,
                );
                return;
            }
            self.err(
                at,
                format!("{prop} {tag:?} is not one of the discriminator's values"),
            );
            return;
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for member in all {
                self.check(member, value, at, true, guard);
            }
            if !in_all_of && let (Some(obj), Some(known)) = (value.as_object(), self.declared(s)) {
                self.unknown(obj, &known, at);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = s.get(key).and_then(Value::as_array) {
                self.one_of(s, options, value, at, guard);
            }
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                _ => true,
            };
            if !ok {
                self.err(at, format!("expected {t}, got {value}"));
                return;
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array)
            && !e.contains(value)
        {
            self.err(
                at,
                format!("{value} is not one of {}", Value::Array(e.clone())),
            );
        }
        if let Some(st) = value.as_str() {
            let n = st.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && n < min
            {
                self.err(at, format!("shorter than {min}"));
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && n > max
            {
                self.err(at, format!("longer than {max}"));
            }
            match s.get("format").and_then(Value::as_str) {
                Some("uri") if url::Url::parse(st).is_err() => self.err(at, "not a URI"),
                Some("email") if !st.contains('@') => self.err(at, "not an email"),
                _ => {}
            }
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                self.err(at, format!("below {min}"));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                self.err(at, format!("above {max}"));
            }
        }
        if let Some(items) = value.as_array() {
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                self.err(at, format!("fewer than {min} items"));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                self.err(at, format!("more than {max} items"));
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.check(item_schema, item, &format!("{at}[{i}]"), false, guard);
                }
            }
        }
        if let Some(obj) = value.as_object() {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    let p = props.and_then(|p| p.get(r));
                    let (ps, _) = p.map_or((&Value::Null, None), |p| resolve(self.spec, p));
                    let flag = if self.response {
                        "writeOnly"
                    } else {
                        "readOnly"
                    };
                    let skip = p.is_some_and(|p| p.get(flag) == Some(&Value::Bool(true)))
                        || ps.get(flag) == Some(&Value::Bool(true));
                    if !skip && !obj.contains_key(r) {
                        self.err(at, format!("required property {r:?} is missing"));
                    }
                }
            }
            if let Some(props) = props {
                for (k, v) in obj {
                    if let Some(p) = props.get(k) {
                        let (ps, _) = resolve(self.spec, p);
                        if self.response
                            && (p.get("writeOnly") == Some(&Value::Bool(true))
                                || ps.get("writeOnly") == Some(&Value::Bool(true)))
                        {
                            self.err(
                                &format!("{at}.{k}"),
                                "is writeOnly and must not appear in a response",
                            );
                        }
                        self.check(p, v, &format!("{at}.{k}"), false, guard);
                    }
                }
                if !in_all_of
                    && s.get("allOf").is_none()
                    && let Some(known) = self.declared(s)
                {
                    self.unknown(obj, &known, at);
                }
            }
        }
    }

    fn unknown(&mut self, obj: &Map<String, Value>, known: &HashSet<String>, at: &str) {
        for k in obj.keys() {
            if !known.contains(k) {
                self.err(&format!("{at}.{k}"), "is not a property the spec declares");
            }
        }
    }

    fn one_of(&mut self, s: &Value, options: &[Value], value: &Value, at: &str, guard: &[String]) {
        // With a discriminator, the tag picks the branch (explicit mapping, or the schema name).
        if let Some(d) = s.get("discriminator") {
            let prop = d["propertyName"].as_str().unwrap_or("type");
            let tag = value[prop].as_str().unwrap_or_default().to_owned();
            let target = d["mapping"][&tag]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("#/components/schemas/{tag}"));
            if options
                .iter()
                .any(|o| o["$ref"].as_str() == Some(target.as_str()))
            {
                self.check(
                    &serde_json::json!({"$ref": target}),
                    value,
                    at,
                    false,
                    guard,
                );
            } else {
                self.err(
                    at,
                    format!("{prop} {tag:?} is not one of the allowed variants"),
                );
            }
            return;
        }
        // Webhook events: each branch's title is the event type.
        if let Some(tag) = value.get("type").and_then(Value::as_str)
            && let Some(branch) = options
                .iter()
                .find(|o| resolve(self.spec, o).0["title"].as_str() == Some(tag))
        {
            self.check(branch, value, at, false, guard);
            return;
        }
        let mut best: Option<Vec<String>> = None;
        for o in options {
            let mut sub = Validator {
                spec: self.spec,
                errors: Vec::new(),
                response: self.response,
            };
            sub.check(o, value, at, false, guard);
            if sub.errors.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| sub.errors.len() < b.len()) {
                best = Some(sub.errors);
            }
        }
        self.err(at, "matches none of the allowed shapes");
        self.errors.extend(best.unwrap_or_default());
    }
}
