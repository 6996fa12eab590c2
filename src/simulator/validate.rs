//! Request validation with the spec's rules: required fields, enums, lengths, URIs, flat
//! metadata of at most 4 KB. Every problem becomes one `bad_request` error whose title names the
//! field by its path (`content.items[0].actions[1].uri`), and all problems of a request are
//! reported together, as a 400 may carry several errors.
//!
//! These rules are written from the spec's schemas, not from what any client sends.

use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};
use crate::sunco::ids::parse_timestamp;

mod messages;

pub(crate) use messages::{activity_post, message_post};

pub(crate) const METADATA_MAX_BYTES: usize = 4096;

/// Collects field errors while walking a request body.
#[derive(Debug, Default)]
pub(crate) struct Check {
    errors: Vec<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Check {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn fail(&mut self, path: &str, problem: impl AsRef<str>) {
        self.errors.push(format!("{path} {}", problem.as_ref()));
    }

    pub(crate) fn finish(self) -> ApiResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_fields(self.errors))
        }
    }

    /// The value must be an object.
    pub(crate) fn object<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
    ) -> Option<&'a Map<String, Value>> {
        match v.as_object() {
            Some(o) => Some(o),
            None => {
                let name = if path.is_empty() {
                    "The request body"
                } else {
                    path
                };
                self.errors.push(format!("{name} must be an object"));
                None
            }
        }
    }

    fn get<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
        nullable: bool,
    ) -> Option<&'a Value> {
        match o.get(key) {
            None => {
                if required {
                    self.fail(&join(path, key), "is required");
                }
                None
            }
            Some(Value::Null) if nullable && !required => None,
            Some(Value::Null) => {
                self.fail(&join(path, key), "must not be null");
                None
            }
            Some(v) => Some(v),
        }
    }

    /// A string of `min..=max` characters.
    pub(crate) fn string<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
        min: usize,
        max: usize,
    ) -> Option<&'a str> {
        let v = self.get(o, path, key, required, true)?;
        let Some(s) = v.as_str() else {
            self.fail(&join(path, key), "must be a string");
            return None;
        };
        let n = s.chars().count();
        if n < min {
            if min == 1 {
                self.fail(&join(path, key), "must not be empty");
            } else {
                self.fail(
                    &join(path, key),
                    format!("must be at least {min} characters"),
                );
            }
        } else if n > max {
            self.fail(
                &join(path, key),
                format!("must be at most {max} characters"),
            );
        }
        Some(s)
    }

    /// A string that must be one of `allowed`.
    pub(crate) fn one_of<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
        allowed: &[&str],
    ) -> Option<&'a str> {
        let v = self.get(o, path, key, required, false)?;
        match v.as_str() {
            Some(s) if allowed.contains(&s) => Some(s),
            _ => {
                self.fail(
                    &join(path, key),
                    format!("must be one of: {}", allowed.join(", ")),
                );
                None
            }
        }
    }

    /// An absolute http(s) URI of at most `max` characters.
    pub(crate) fn uri<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
        max: usize,
    ) -> Option<&'a str> {
        let s = self.string(o, path, key, required, 1, max)?;
        match url::Url::parse(s) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(s),
            _ => {
                self.fail(&join(path, key), "must be an absolute http or https URI");
                None
            }
        }
    }

    pub(crate) fn boolean(
        &mut self,
        o: &Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<bool> {
        let v = self.get(o, path, key, required, false)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.fail(&join(path, key), "must be a boolean");
                None
            }
        }
    }

    pub(crate) fn number(
        &mut self,
        o: &Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<f64> {
        let v = self.get(o, path, key, required, false)?;
        match v.as_f64() {
            Some(n) => Some(n),
            None => {
                self.fail(&join(path, key), "must be a number");
                None
            }
        }
    }

    pub(crate) fn integer(
        &mut self,
        o: &Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
        nullable: bool,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let v = self.get(o, path, key, required, nullable)?;
        match v.as_i64() {
            Some(n) if range.contains(&n) => Some(n),
            Some(_) => {
                self.fail(
                    &join(path, key),
                    format!("must be from {} to {}", range.start(), range.end()),
                );
                None
            }
            None => {
                self.fail(&join(path, key), "must be an integer");
                None
            }
        }
    }

    /// An array of `min..=max` items.
    pub(crate) fn array<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
        min: usize,
        max: usize,
    ) -> Option<&'a Vec<Value>> {
        let v = self.get(o, path, key, required, true)?;
        let Some(a) = v.as_array() else {
            self.fail(&join(path, key), "must be an array");
            return None;
        };
        if a.len() < min || a.len() > max {
            if min == max {
                self.fail(&join(path, key), format!("must have exactly {min} item(s)"));
            } else {
                self.fail(
                    &join(path, key),
                    format!("must have from {min} to {max} items"),
                );
            }
        }
        Some(a)
    }

    pub(crate) fn nested<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<&'a Map<String, Value>> {
        let v = self.get(o, path, key, required, true)?;
        self.object(v, &join(path, key))
    }

    /// `metadata`: nullable, flat (string, number or boolean values), at most 4 KB serialised.
    pub(crate) fn metadata(&mut self, o: &Map<String, Value>, path: &str) {
        let Some(v) = self.get(o, path, "metadata", false, true) else {
            return;
        };
        let p = join(path, "metadata");
        let Some(m) = v.as_object() else {
            self.fail(&p, "must be an object");
            return;
        };
        for (k, v) in m {
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                self.fail(
                    &format!("{p}.{k}"),
                    "must be a string, number or boolean (metadata is flat)",
                );
            }
        }
        let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0);
        if size > METADATA_MAX_BYTES {
            self.fail(
                &p,
                format!("must be at most 4KB when serialised (is {size} bytes)"),
            );
        }
    }

    /// An ISO-8601 date-time string.
    pub(crate) fn date_time(&mut self, o: &Map<String, Value>, path: &str, key: &str) {
        if let Some(s) = self.string(o, path, key, false, 1, 64)
            && parse_timestamp(s).is_none()
        {
            self.fail(
                &join(path, key),
                "must be an ISO-8601 date-time such as 2020-09-30T13:46:02.733Z",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Users

fn profile(c: &mut Check, o: &Map<String, Value>) {
    let Some(p) = c.nested(o, "", "profile", false) else {
        return;
    };
    c.string(p, "profile", "givenName", false, 1, 128);
    c.string(p, "profile", "surname", false, 1, 128);
    if let Some(email) = c.string(p, "profile", "email", false, 1, 128)
        && !looks_like_email(email)
    {
        c.fail("profile.email", "must be an email address");
    }
    c.uri(p, "profile", "avatarUrl", false, 2048);
    c.string(p, "profile", "locale", false, 1, 64);
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !s.contains(' ')
        }
        None => false,
    }
}

/// `userCreateBody`.
pub(crate) fn user_create(body: &Value) -> ApiResult<()> {
    let mut c = Check::new();
    if let Some(o) = c.object(body, "") {
        c.string(o, "", "externalId", false, 1, 1024);
        c.string(o, "", "brandId", false, 1, 24);
        c.date_time(o, "", "signedUpAt");
        c.boolean(o, "", "toBeRetained", false);
        profile(&mut c, o);
        c.metadata(o, "");
    }
    c.finish()
}

/// `userUpdateBody`; `externalId` cannot be changed.
pub(crate) fn user_update(body: &Value) -> ApiResult<()> {
    let mut c = Check::new();
    if let Some(o) = c.object(body, "") {
        if o.contains_key("externalId") {
            c.fail("externalId", "cannot be changed");
        }
        c.date_time(o, "", "signedUpAt");
        c.boolean(o, "", "toBeRetained", false);
        profile(&mut c, o);
        c.metadata(o, "");
    }
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// Conversations

fn conversation_fields(c: &mut Check, o: &Map<String, Value>) {
    c.string(o, "", "displayName", false, 1, 100);
    c.string(o, "", "description", false, 1, 100);
    c.uri(o, "", "iconUrl", false, 2048);
    c.metadata(o, "");
}

/// `conversationCreateBody`.
pub(crate) fn conversation_create(body: &Value) -> ApiResult<()> {
    let mut c = Check::new();
    if let Some(o) = c.object(body, "") {
        let kind = c.one_of(o, "", "type", true, &["personal", "sdkGroup"]);
        let participants = c.array(o, "", "participants", false, 0, 10);
        let count = participants.map_or(0, Vec::len);
        if kind == Some("personal") && count != 1 {
            c.fail(
                "participants",
                "must have exactly 1 item for a personal conversation",
            );
        }
        for (i, p) in participants.into_iter().flatten().enumerate() {
            let path = format!("participants[{i}]");
            if let Some(po) = c.object(p, &path) {
                let id = c.string(po, &path, "userId", false, 1, 1024);
                let ext = c.string(po, &path, "userExternalId", false, 1, 1024);
                match (id, ext) {
                    (None, None) => c.fail(&path, "must have userId or userExternalId"),
                    (Some(_), Some(_)) => {
                        c.fail(&path, "must have userId or userExternalId, not both")
                    }
                    _ => {}
                }
                let sub = c.boolean(po, &path, "subscribeSDKClient", false);
                if kind == Some("sdkGroup") && sub.is_none() {
                    c.fail(
                        &join(&path, "subscribeSDKClient"),
                        "is required for sdkGroup conversations",
                    );
                }
            }
        }
        conversation_fields(&mut c, o);
    }
    c.finish()
}

/// `conversationUpdateBody`.
pub(crate) fn conversation_update(body: &Value) -> ApiResult<()> {
    let mut c = Check::new();
    if let Some(o) = c.object(body, "") {
        conversation_fields(&mut c, o);
    }
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// Switchboards and control

/// `passControlBody` / `offerControlBody`.
pub(crate) fn control_target(body: &Value) -> ApiResult<String> {
    let mut c = Check::new();
    let mut target = None;
    if let Some(o) = c.object(body, "") {
        target = c
            .string(o, "", "switchboardIntegration", true, 1, 128)
            .map(str::to_owned);
        c.metadata(o, "");
    }
    c.finish()?;
    target.ok_or_else(|| ApiError::bad_request("switchboardIntegration is required"))
}

/// `acceptControlBody` / `releaseControlBody` (the body may be empty).
pub(crate) fn control(body: &Value) -> ApiResult<()> {
    let mut c = Check::new();
    if !body.is_null()
        && let Some(o) = c.object(body, "")
    {
        c.metadata(o, "");
    }
    c.finish()
}

/// `switchboardUpdateBody`.
pub(crate) fn switchboard_update(body: &Value) -> ApiResult<()> {
    let mut c = Check::new();
    if let Some(o) = c.object(body, "") {
        c.boolean(o, "", "enabled", false);
        c.string(o, "", "defaultSwitchboardIntegrationId", false, 24, 24);
    }
    c.finish()
}

fn valid_name(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `switchboardIntegrationCreateBody` / `...UpdateBody`.
pub(crate) fn switchboard_integration(body: &Value, create: bool) -> ApiResult<()> {
    let mut c = Check::new();
    if let Some(o) = c.object(body, "") {
        if let Some(name) = c.string(o, "", "name", create, 1, 128)
            && !valid_name(name)
        {
            c.fail("name", "may contain only letters, digits, _ and -");
        }
        let id = c.string(o, "", "integrationId", false, 1, 64);
        let ty = c.string(o, "", "integrationType", false, 1, 128);
        if create && id.is_none() && ty.is_none() {
            c.fail("integrationId", "or integrationType is required");
        }
        c.boolean(o, "", "deliverStandbyEvents", false);
        c.string(o, "", "nextSwitchboardIntegrationId", false, 24, 24);
        c.integer(o, "", "messageHistoryCount", false, true, 1..=10);
    }
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// The triggers a webhook may subscribe to.
pub(crate) const TRIGGERS: &[&str] = crate::sunco::wire::event_type::TRIGGERS;

/// `webhookCreateBody` / `webhookBody`.
pub(crate) fn webhook(body: &Value, create: bool) -> ApiResult<()> {
    let mut c = Check::new();
    if let Some(o) = c.object(body, "") {
        c.uri(o, "", "target", create, 2048);
        if let Some(triggers) = c.array(o, "", "triggers", create, 1, TRIGGERS.len()) {
            for (i, t) in triggers.iter().enumerate() {
                if !t.as_str().is_some_and(|t| TRIGGERS.contains(&t)) {
                    c.fail(&format!("triggers[{i}]"), "is not a known trigger");
                }
            }
        }
        c.boolean(o, "", "includeFullUser", false);
        c.boolean(o, "", "includeFullSource", false);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn titles(r: ApiResult<()>) -> Vec<String> {
        r.err()
            .map(|e| e.errors.into_iter().map(|e| e.title).collect())
            .unwrap_or_default()
    }

    #[test]
    fn message_errors_name_the_field() {
        let long = "x".repeat(4097);
        let t = titles(message_post(&json!({
            "author": {"type": "robot"},
            "content": {"type": "text", "text": long},
        })));
        assert!(
            t.contains(&"author.type must be one of: business, user".to_owned()),
            "{t:?}"
        );
        assert!(
            t.contains(&"content.text must be at most 4096 characters".to_owned()),
            "{t:?}"
        );
        let t = titles(message_post(&json!({
            "author": {"type": "business"},
            "content": {"type": "carousel", "items": [{"title": "a", "actions": [{"type": "reply", "text": "x", "payload": "y"}]}]},
        })));
        assert_eq!(
            t,
            vec!["content.items[0].actions[0].type must be one of: buy, link, postback, webview"]
        );
        assert!(
            titles(message_post(
                &json!({"author":{"type":"business"},"content":{"type":"text","text":"hi"}})
            ))
            .is_empty()
        );
    }

    #[test]
    fn metadata_is_flat_and_small() {
        let t = titles(user_create(&json!({"metadata": {"a": {"b": 1}}})));
        assert_eq!(
            t,
            vec!["metadata.a must be a string, number or boolean (metadata is flat)"]
        );
        let big = "x".repeat(4100);
        assert_eq!(
            titles(user_create(&json!({"metadata": {"a": big}}))).len(),
            1
        );
        assert!(titles(user_create(&json!({"metadata": null}))).is_empty());
    }

    #[test]
    fn personal_needs_exactly_one_participant() {
        let t = titles(conversation_create(
            &json!({"type": "personal", "participants": []}),
        ));
        assert_eq!(
            t,
            vec!["participants must have exactly 1 item for a personal conversation"]
        );
    }
}
