//! Resource ids and timestamps in the forms the API uses: 24 lowercase hex characters, and
//! `YYYY-MM-DDThh:mm:ss.SSSZ` in UTC.

use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// The API's timestamp format: milliseconds, always UTC with a literal `Z`.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Formats a point in time the way the API writes timestamps.
pub(crate) fn format_timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    // Formatting with a static description into a String cannot fail for in-range dates; the
    // fallback keeps this total without a panic path.
    utc.format(TIMESTAMP)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

/// The current time as an API timestamp.
pub(crate) fn now_timestamp() -> String {
    format_timestamp(OffsetDateTime::now_utc())
}

/// A point in time as Unix milliseconds (how the shared stores keep times).
pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Now, in Unix milliseconds.
pub(crate) fn now_unix_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

/// The point in time `ms` Unix milliseconds name; `None` outside the dates `time` handles.
pub(crate) fn from_unix_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Parses an ISO-8601 / RFC 3339 date-time as the API accepts it (for example `signedUpAt`).
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// True when `s` has the form of a resource id: exactly 24 hex characters.
pub(crate) fn is_resource_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Generates ids shaped like the API's (MongoDB ObjectIds): 8 hex digits of seconds, 6 of a
/// per-generator random tag and 10 of a counter.
///
/// Ids from one generator sort in creation order, which is what cursor pagination relies on:
/// `page[after]=X` means "records whose id sorts after X". The seconds part never goes backwards,
/// even when a caller back-dates a record (seeded history), so the order holds.
#[derive(Debug)]
pub(crate) struct IdGenerator {
    tag: u32,
    counter: AtomicU64,
    last_secs: AtomicU64,
}

impl IdGenerator {
    pub(crate) fn new() -> Self {
        Self {
            tag: rand::random::<u32>() & 0x00ff_ffff,
            counter: AtomicU64::new(rand::random::<u32>() as u64),
            last_secs: AtomicU64::new(0),
        }
    }

    /// A new id stamped with `at` (or with the latest stamp already used, if that is later).
    pub(crate) fn id_at(&self, at: OffsetDateTime) -> String {
        let secs = at.unix_timestamp().clamp(0, u32::MAX as i64) as u64;
        let secs = self.last_secs.fetch_max(secs, Ordering::SeqCst).max(secs);
        let count = self.counter.fetch_add(1, Ordering::SeqCst) & 0xff_ffff_ffff;
        format!("{secs:08x}{:06x}{count:010x}", self.tag)
    }

    /// A new id stamped with the current time.
    pub(crate) fn next(&self) -> String {
        self.id_at(OffsetDateTime::now_utc())
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_24_hex_and_sorted_even_when_backdated() {
        let ids = IdGenerator::new();
        let now = OffsetDateTime::now_utc();
        let a = ids.id_at(now);
        let b = ids.id_at(now - time::Duration::days(3));
        let c = ids.next();
        for id in [&a, &b, &c] {
            assert!(is_resource_id(id), "{id}");
        }
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_601_473_562_733_000_000).unwrap();
        assert_eq!(format_timestamp(at), "2020-09-30T13:46:02.733Z");
        assert!(parse_timestamp("2020-09-30T13:46:02.733Z").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
