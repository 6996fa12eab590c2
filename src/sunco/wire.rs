//! Serde types for what travels on the wire, named after the spec's schemas.
//!
//! Field names are the API's (camelCase). Optional fields are omitted when absent, the way the
//! API's examples show them; a field the spec marks nullable and that we must be able to clear
//! is a `Option<Option<T>>` only where the API actually distinguishes "absent" from `null`.
//!
//! One file per schema family below `wire/`; everything is re-exported here, so a type is
//! `wire::Message` wherever it lives.

use serde_json::{Map, Value};

/// Flat `metadata`: string, number or boolean values, at most 4 KB.
pub(crate) type Metadata = Map<String, Value>;

/// The schema of a JSON object passed through as it is (`{"type": "object"}`).
pub(crate) fn json_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object"})
}

/// The schema of a list of JSON objects passed through as they are.
fn json_object_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "array", "items": {"type": "object"}})
}

mod conversations;
mod errors;
mod integrations;
mod messages;
mod responses;
mod switchboards;
mod users;
mod webhooks;

pub(crate) use conversations::*;
pub(crate) use errors::*;
pub(crate) use integrations::*;
pub use messages::*;
pub(crate) use responses::*;
pub use switchboards::*;
pub use users::*;
pub use webhooks::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_round_trips_with_its_discriminator() {
        let v = json!({"type":"carousel","items":[{"title":"Tacos","actions":[
            {"type":"postback","text":"Select","payload":"TACOS"},
            {"type":"link","text":"More","uri":"https://example.org"}]}]});
        let c: Content = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(c.type_name(), "carousel");
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
    }

    #[test]
    fn unknown_content_type_is_refused() {
        assert!(serde_json::from_value::<Content>(json!({"type":"hologram"})).is_err());
    }
}
