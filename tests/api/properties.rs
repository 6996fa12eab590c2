//! Property tests: whatever arrives, the parsers answer with an error that names the problem,
//! never a panic, and what they accept round-trips.

use proptest::prelude::*;
use serde_json::{Value, json};

use zendesk_messaging_mcp::mcp::content::parse_content;
use zendesk_messaging_mcp::mcp::cursor;
use zendesk_messaging_mcp::secret::Secret;
use zendesk_messaging_mcp::sunco::auth::{Scope, mint_jwt};
use zendesk_messaging_mcp::sunco::endpoints::Endpoint;
use zendesk_messaging_mcp::sunco::paging::Page;

use crate::mcp_support::TestServer;

/// Arbitrary JSON, a few levels deep, biased towards the shapes messages use.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-zA-Z0-9 :/._-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("text"),
            Just("image"),
            Just("carousel"),
            Just("form"),
            Just("location"),
            Just("https://example.org/a.png"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("text".to_owned()),
                    Just("mediaUrl".to_owned()),
                    Just("items".to_owned()),
                    Just("actions".to_owned()),
                    Just("fields".to_owned()),
                    Just("coordinates".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn content_decoding_never_panics_and_names_a_content_field(v in json_value()) {
        match parse_content(v) {
            Ok(c) => prop_assert!(!c.type_name().is_empty()),
            Err(zendesk_messaging_mcp::error::CallError::InvalidArgument { field, reason }) => {
                prop_assert!(field.starts_with("content"), "{field}");
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn cursors_accept_only_what_they_issued(list in "list_[a-z]{1,12}", raw in ".{0,80}") {
        // Arbitrary text is refused, never a panic.
        if let Ok(at) = cursor::decode(&list, &raw) {
            prop_assert_eq!(cursor::encode(&list, &at), raw.trim());
        }
        let id = "5f0c1e2d3b4a596877889900";
        let decoded = cursor::decode(&list, &cursor::encode(&list, id)).ok();
        prop_assert_eq!(decoded.as_deref(), Some(id));
    }

    #[test]
    fn page_parameters_parse_or_refuse(after in proptest::option::of(".{0,30}"), before in proptest::option::of(".{0,30}"), size in proptest::option::of(".{0,5}")) {
        if let Ok(page) = Page::parse(after.as_deref(), before.as_deref(), size.as_deref()) {
            let pairs = page.query_pairs();
            let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let again = Page::parse(get("page[after]"), get("page[before]"), get("page[size]"));
            prop_assert_eq!(again.ok(), Some(page));
        }
    }

    #[test]
    fn path_templates_never_carry_the_callers_ids(id in "[^\u{0}]{1,40}") {
        let req = Endpoint::GetUser { user: id.clone() }.to_http("5f0c1e2d3b4a596877889900");
        prop_assert_eq!(req.template(), "/v2/apps/{appId}/users/{userIdOrExternalId}");
        // The id is one encoded segment: no slash or dot-segment survives.
        let segment = req.path.rsplit('/').next().unwrap_or_default();
        prop_assert!(!segment.contains('/') && segment != ".." && segment != ".");
        prop_assert_eq!(req.path.matches('/').count(), 5);
    }

    #[test]
    fn jwts_carry_the_key_id_and_verify_with_the_secret(kid in "app_[a-f0-9]{1,24}", secret in "[ -~]{1,64}") {
        let token = mint_jwt(&kid, &Secret::new(secret.clone()), Scope::App, Some(4_000_000_000)).expect("mint");
        let header = jsonwebtoken::decode_header(token.expose()).expect("header");
        prop_assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Value>(
            token.expose(),
            &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        );
        prop_assert!(claims.is_ok());
        prop_assert_eq!(claims.expect("claims").claims["scope"].clone(), json!("app"));
    }
}

/// Arbitrary webhook bodies (well-formed or not) against the live route: 200 or 400, never a
/// failure, and the server keeps answering.
#[test]
fn webhook_bodies_never_break_the_route() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t = runtime.block_on(TestServer::start());
    let http = reqwest::Client::new();
    let url = t.server.webhook_url();
    let strategy = prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        json_value().prop_map(|events| {
            json!({"app": {"id": "5f0c1e2d3b4a596877889900"},
                   "webhook": {"id": "w", "version": "v2"},
                   "events": [{"id": "e1", "type": "conversation:message:delivery:failure",
                               "createdAt": "2026-01-01T00:00:00Z", "payload": events}]})
            .to_string()
            .into_bytes()
        }),
        prop::collection::vec(any::<u8>(), 0..200),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |body| {
            let status = runtime.block_on(async {
                http.post(&url)
                    .header("X-API-Key", "sim-webhook-secret")
                    .body(body)
                    .send()
                    .await
                    .expect("post")
                    .status()
                    .as_u16()
            });
            prop_assert!(status == 200 || status == 400, "status {status}");
            Ok(())
        })
        .expect("property");
    let alive = runtime.block_on(t.ok("list_delivery_failures", json!({})));
    assert!(alive["failures"].is_array());
}
