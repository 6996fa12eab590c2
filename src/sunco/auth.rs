//! Credentials for the API: HS256 JWTs and Basic auth, as pure functions.
//!
//! A JWT carries the key id in its `kid` header and `scope` in its payload; the API names no
//! other claim, so `exp` is optional and only added when a lifetime is asked for.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Who a key belongs to, which decides what it may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    App,
    Account,
    Integration,
}

impl Scope {
    /// The scope a key id implies by its prefix (`app_`, `act_`/`svc_`, `int_`).
    /// The scope a key id's prefix names, or `None` when the id has no known prefix or
    /// nothing after it (`app_` alone is not a key id).
    pub(crate) fn of_key_id(key_id: &str) -> Option<Scope> {
        let (prefix, id) = key_id.split_once('_')?;
        if id.is_empty() || id.chars().any(char::is_whitespace) {
            return None;
        }
        match prefix {
            "app" => Some(Scope::App),
            "act" | "svc" => Some(Scope::Account),
            "int" => Some(Scope::Integration),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scope::App => "app",
            Scope::Account => "account",
            Scope::Integration => "integration",
        }
    }
}

/// The JWT payload the API reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Claims {
    pub(crate) scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("could not sign the JWT: {0}")]
pub struct JwtError(#[from] jsonwebtoken::errors::Error);

/// Mints an HS256 JWT: header `kid` = `key_id`, payload `{scope, exp?}`, signed with `secret`.
pub fn mint_jwt(
    key_id: &str,
    secret: &Secret,
    scope: Scope,
    exp_unix: Option<u64>,
) -> Result<Secret, JwtError> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key_id.to_owned());
    let claims = Claims {
        scope: scope.as_str().to_owned(),
        exp: exp_unix,
    };
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )?;
    Ok(Secret::new(token))
}

/// The `Authorization` header value for Basic auth: key id as user name, secret as password.
pub fn basic_header(key_id: &str, secret: &Secret) -> Secret {
    let raw = format!("{key_id}:{}", secret.expose());
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
}

/// The `Authorization` header value for a bearer token.
pub fn bearer_header(token: &Secret) -> Secret {
    Secret::new(format!("Bearer {}", token.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn jwt_has_kid_scope_and_optional_exp() {
        let secret = Secret::new("s3cret");
        let token = mint_jwt("app_123", &secret, Scope::App, None).unwrap();
        let header = jsonwebtoken::decode_header(token.expose()).unwrap();
        assert_eq!(header.kid.as_deref(), Some("app_123"));
        assert_eq!(header.alg, Algorithm::HS256);
        let mut v = Validation::new(Algorithm::HS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<Claims>(
            token.expose(),
            &DecodingKey::from_secret(b"s3cret"),
            &v,
        )
        .unwrap();
        assert_eq!(
            data.claims,
            Claims {
                scope: "app".into(),
                exp: None
            }
        );
        let with_exp = mint_jwt("app_123", &secret, Scope::App, Some(4_000_000_000)).unwrap();
        let data = jsonwebtoken::decode::<Claims>(
            with_exp.expose(),
            &DecodingKey::from_secret(b"s3cret"),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims.exp, Some(4_000_000_000));
        assert!(
            jsonwebtoken::decode::<Claims>(token.expose(), &DecodingKey::from_secret(b"x"), &v)
                .is_err()
        );
    }

    #[test]
    fn basic_is_key_id_colon_secret() {
        let h = basic_header("app_1", &Secret::new("pw"));
        assert_eq!(h.expose(), "Basic YXBwXzE6cHc=");
    }

    #[test]
    fn scopes_follow_prefixes() {
        assert_eq!(Scope::of_key_id("app_x"), Some(Scope::App));
        assert_eq!(Scope::of_key_id("act_x"), Some(Scope::Account));
        assert_eq!(Scope::of_key_id("svc_x"), Some(Scope::Account));
        assert_eq!(Scope::of_key_id("int_x"), Some(Scope::Integration));
        assert_eq!(Scope::of_key_id("x"), None);
        assert_eq!(Scope::of_key_id("app_"), None);
        assert_eq!(Scope::of_key_id("app_ "), None);
        assert_eq!(Scope::of_key_id("app_ x y"), None);
    }
}
