//! Opaque page cursors: what a list tool hands out as `nextCursor` and takes back as `cursor`.
//!
//! A cursor names the list it belongs to, so one from `list_messages` cannot be replayed on
//! `list_conversations`, and carries the upstream position (a record id).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::CallError;
use crate::sunco::ids::is_resource_id;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Raw {
    /// The list.
    l: String,
    /// The upstream record id to continue from.
    at: String,
}

/// Encodes a position in `list`.
pub fn encode(list: &str, at: &str) -> String {
    let raw = Raw {
        l: list.to_owned(),
        at: at.to_owned(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&raw).unwrap_or_default())
}

/// Decodes a cursor given back to `list`.
pub fn decode(list: &str, cursor: &str) -> Result<String, CallError> {
    let bad = || {
        CallError::invalid(
            "cursor",
            format!(
                "is not a cursor from {list}; pass the nextCursor of an earlier {list} call unchanged, or omit it for the first page"
            ),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let raw: Raw = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if raw.l != list || !is_resource_id(&raw.at) {
        return Err(bad());
    }
    Ok(raw.at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_foreign_cursors() {
        let id = "5e1606762556d93e9c176f69";
        let c = encode("list_messages", id);
        assert_eq!(decode("list_messages", &c).unwrap(), id);
        assert!(decode("list_conversations", &c).is_err());
        assert!(decode("list_messages", "garbage").is_err());
        assert!(decode("list_messages", &encode("list_messages", "../x")).is_err());
    }
}
