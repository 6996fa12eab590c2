//! Path segments taken from callers are percent-encoded so that an id such as `../x` or `a/b`
//! stays inside its own segment and can never address another resource.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986 "unreserved" characters is encoded; `.` is encoded too, so that a
/// segment of `.` or `..` cannot be normalised away by a proxy or an HTTP library.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// Encodes one path segment.
pub(crate) fn segment(raw: &str) -> String {
    utf8_percent_encode(raw, SEGMENT).to_string()
}

/// Encodes a query value (used for filters and cursors).
pub(crate) fn query_value(raw: &str) -> String {
    utf8_percent_encode(raw, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_stay_in_their_segment() {
        assert_eq!(segment("../x"), "%2E%2E%2Fx");
        assert_eq!(segment("a/b"), "a%2Fb");
        assert_eq!(segment("a?b#c"), "a%3Fb%23c");
        assert_eq!(
            segment("5f748c1a2b5315fc007e7977"),
            "5f748c1a2b5315fc007e7977"
        );
        assert_eq!(segment("demo-user_01~x"), "demo-user_01~x");
        assert!(!segment("..").contains('.'));
    }
}
