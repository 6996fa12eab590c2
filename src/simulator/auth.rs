//! Who is calling: Basic (`keyId:secret`) or an HS256 JWT whose `kid` names the key, and what
//! that key's scope allows.
//!
//! App and integration keys reach only their own app; account keys reach every app. The scope a
//! JWT claims must be the scope of the key that signed it.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::error::{ApiError, ApiResult};
use super::state::World;
use crate::sunco::auth::{Claims, Scope};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) key_id: String,
    pub(crate) scope: Scope,
    /// For integration keys: the custom integration the key belongs to.
    pub(crate) integration_id: Option<String>,
}

/// Scopes allowed by an operation's `security` block.
pub(crate) const ALL_SCOPES: &[Scope] = &[Scope::Integration, Scope::App, Scope::Account];
pub(crate) const APP_OR_ACCOUNT: &[Scope] = &[Scope::App, Scope::Account];
pub(crate) const INTEGRATION_OR_APP: &[Scope] = &[Scope::Integration, Scope::App];

/// Authenticates the request and checks that it may act on `app_id` with one of `allowed`.
pub(crate) fn authorize(
    world: &World,
    headers: &HeaderMap,
    app_id: &str,
    allowed: &[Scope],
) -> ApiResult<Caller> {
    let caller = authenticate(world, headers)?;
    let key = world
        .keys
        .get(&caller.key_id)
        .ok_or_else(|| ApiError::unauthorized("Invalid credentials"))?;
    match &key.app_id {
        Some(own) if own != app_id => {
            return Err(ApiError::forbidden(
                "The credentials used do not give access to this app",
            ));
        }
        _ => {}
    }
    if !world.apps.contains_key(app_id) {
        return Err(ApiError::app_not_found());
    }
    if !allowed.contains(&caller.scope) {
        return Err(ApiError::forbidden(format!(
            "A key with {} scope cannot call this endpoint",
            caller.scope.as_str()
        )));
    }
    Ok(caller)
}

fn authenticate(world: &World, headers: &HeaderMap) -> ApiResult<Caller> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized("Authorization is required"));
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("Invalid authorization header"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        basic(world, rest)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        bearer(world, rest)
    } else {
        Err(ApiError::unauthorized(
            "Unsupported authorization scheme: use Basic or Bearer",
        ))
    }
}

fn basic(world: &World, encoded: &str) -> ApiResult<Caller> {
    let invalid = || ApiError::unauthorized("Invalid credentials");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (key_id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    let key = world.keys.get(key_id).ok_or_else(invalid)?;
    if !key.secret.matches(secret.as_bytes()) {
        return Err(invalid());
    }
    Ok(Caller {
        key_id: key.id.clone(),
        scope: key.scope,
        integration_id: key.integration_id.clone(),
    })
}

fn bearer(world: &World, token: &str) -> ApiResult<Caller> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| ApiError::unauthorized("Invalid JWT"))?;
    if header.alg != Algorithm::HS256 {
        return Err(ApiError::unauthorized(
            "Invalid JWT: the algorithm must be HS256",
        ));
    }
    let kid = header
        .kid
        .ok_or_else(|| ApiError::unauthorized("Invalid JWT header. Missing key id (kid)"))?;
    let key = world
        .keys
        .get(&kid)
        .ok_or_else(|| ApiError::unauthorized("Invalid JWT: unknown key id"))?;
    let mut validation = Validation::new(Algorithm::HS256);
    // The API requires no claim but `scope`; `exp` is honoured when present.
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(key.secret.expose().as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
            ApiError::unauthorized("Invalid JWT: the token has expired")
        }
        _ => ApiError::unauthorized("Invalid JWT"),
    })?;
    if data.claims.scope != key.scope.as_str() {
        return Err(ApiError::unauthorized(format!(
            "Invalid JWT: scope must be \"{}\" for this key",
            key.scope.as_str()
        )));
    }
    Ok(Caller {
        key_id: key.id.clone(),
        scope: key.scope,
        integration_id: key.integration_id.clone(),
    })
}
