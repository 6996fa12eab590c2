//! Faults the simulator can inject, all off by default: a per-app rate limit (token bucket)
//! answering 429 with or without `Retry-After`, random 500/503, added latency, dropped
//! connections, and accept-then-fail (the write is stored, then 503 is returned: the ambiguous
//! failure that makes a blind retry send a message twice).
//!
//! Faults apply to the API routes only, never to the admin routes under `/_sim`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The fault settings, as flags and `PUT /_sim/faults` set them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faults {
    /// Requests per second and burst allowed per app; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Whether 429 answers carry `Retry-After` (whole seconds).
    pub retry_after: bool,
    /// Share of API requests answered 500 or 503 before anything is done.
    pub fail_rate: f64,
    /// Added to every API request before it is handled.
    pub latency_ms: u64,
    /// Share of API requests whose connection is closed without an answer, after the request
    /// was handled (so a write may have been stored).
    pub(crate) drop_rate: f64,
    /// Share of successful writes (POST, PATCH, DELETE) answered 503 after being stored.
    pub(crate) accept_then_fail_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub rps: f64,
    pub burst: u32,
}

impl RateLimit {
    /// Parses `RPS[:BURST]`; the burst defaults to the rate rounded up (at least 1).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let (rps, burst) = match s.split_once(':') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let rps: f64 = rps
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(|| format!("expected RPS[:BURST] with RPS > 0, got {s:?}"))?;
        let burst = match burst {
            Some(b) => b
                .parse::<u32>()
                .ok()
                .filter(|b| *b >= 1)
                .ok_or_else(|| format!("expected a BURST of at least 1, got {s:?}"))?,
            None => (rps.ceil() as u32).max(1),
        };
        Ok(Self { rps, burst })
    }
}

impl Faults {
    /// Checks that rates are shares from 0 to 1.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("failRate", self.fail_rate),
            ("dropRate", self.drop_rate),
            ("acceptThenFailRate", self.accept_then_fail_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be from 0 to 1, got {v}"));
            }
        }
        if let Some(rl) = self.rate_limit
            && (!(rl.rps.is_finite() && rl.rps > 0.0) || rl.burst == 0)
        {
            return Err("rateLimit needs rps > 0 and burst >= 1".to_owned());
        }
        Ok(())
    }
}

/// Token buckets, one per app.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    apps: HashMap<String, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Buckets {
    /// Takes a token for `app`, or says how long until one is available.
    pub(crate) fn take(
        &mut self,
        app: &str,
        limit: RateLimit,
        now: Instant,
    ) -> Result<(), Duration> {
        let bucket = self.apps.entry(app.to_owned()).or_insert(Bucket {
            tokens: limit.burst as f64,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.rps).min(limit.burst as f64);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / limit.rps))
        }
    }

    pub(crate) fn clear(&mut self) {
        self.apps.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rate_limits() {
        assert_eq!(
            RateLimit::parse("5:10").unwrap(),
            RateLimit {
                rps: 5.0,
                burst: 10
            }
        );
        assert_eq!(
            RateLimit::parse("2.5").unwrap(),
            RateLimit { rps: 2.5, burst: 3 }
        );
        assert!(RateLimit::parse("0").is_err());
        assert!(RateLimit::parse("5:0").is_err());
        assert!(RateLimit::parse("x").is_err());
    }

    #[test]
    fn bucket_refills_at_the_rate() {
        let mut b = Buckets::default();
        let limit = RateLimit { rps: 2.0, burst: 2 };
        let t0 = Instant::now();
        assert!(b.take("a", limit, t0).is_ok());
        assert!(b.take("a", limit, t0).is_ok());
        let wait = b.take("a", limit, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert!(b.take("other", limit, t0).is_ok(), "buckets are per app");
        assert!(b.take("a", limit, t0 + Duration::from_millis(500)).is_ok());
    }

    #[test]
    fn rates_must_be_shares() {
        let f = Faults {
            fail_rate: 1.5,
            ..Default::default()
        };
        assert!(f.check().unwrap_err().contains("failRate"));
        assert!(Faults::default().check().is_ok());
    }
}
