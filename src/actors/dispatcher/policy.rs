//! The retry decision as a pure function (tower's `Policy` idea): from the request's retry
//! class, the attempt's number and what the attempt came to, it says whether to answer, retry
//! after a delay, re-authenticate, give up, or report that the outcome is unknown. The
//! dispatcher carries the decision out; the table test below pins every case down.
//!
//! The rules (the spec's idempotency of each method, and what a failure proves):
//! - 2xx and other 4xx: the answer (a 4xx is the caller's to read);
//! - 429: retry after `Retry-After`, or the backoff delay; the upstream did not act on it;
//! - 401: once, re-authenticate and retry at once; after that, give up as unauthorized;
//! - 5xx, a timeout or a connection broken after the request went out: retry reads and
//!   idempotent writes; for a create or a send the upstream may have acted, so the outcome is
//!   unknown and nothing is repeated;
//! - a connection never made: retry anything (the upstream never saw it);
//! - a retry that would pass the call's deadline or its allowed attempts gives up instead.

use std::time::Duration;

use crate::sunco::endpoints::RetryClass;

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    /// An HTTP answer, with its `Retry-After` when it had one.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The connection was never made: the upstream did not see the request.
    NotSent,
    /// The request may have reached the upstream but no answer came in time.
    Timeout,
    /// The connection broke after the request was written.
    Broken,
}

/// Why a call is tried again (the `reason` attribute of the retry metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryReason {
    /// A 429.
    Throttled,
    /// A 401, with a fresh credential.
    Reauthenticated,
    /// A 5xx, a timeout, a broken or refused connection.
    Failure,
}

impl RetryReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RetryReason::Throttled => "throttled",
            RetryReason::Reauthenticated => "reauthenticated",
            RetryReason::Failure => "failure",
        }
    }
}

/// Why a call stops being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUpReason {
    /// Still throttled when the deadline passed or the attempts ran out.
    Throttled,
    /// The next attempt would start after the call's deadline.
    Deadline,
    /// Every allowed attempt was made.
    Attempts,
    /// Refused again right after a fresh credential.
    Unauthorized,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Hand the answer (2xx, or a 4xx as an upstream error) to the caller.
    Answer,
    /// Mint a fresh credential, then try again at once.
    Reauthenticate,
    /// Try again after `after`.
    Retry {
        after: Duration,
        reason: RetryReason,
    },
    /// Stop, for this reason; `after` is the wait the retry would have needed.
    GiveUp {
        reason: GiveUpReason,
        last: RetryReason,
        after: Duration,
    },
    /// A write may have been stored: report it, never repeat it.
    OutcomeUnknown,
}

/// What the call has left for another attempt: attempts and time (what the decision may draw
/// on besides the attempt itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Remaining {
    /// The attempt just made (1 for the first).
    pub(crate) attempt: u32,
    /// Attempts allowed in all.
    pub(crate) max_attempts: u32,
    /// Time left before the call's deadline.
    pub(crate) time: Duration,
    /// Whether this call has already re-authenticated once.
    pub(crate) reauthenticated: bool,
}

/// The decision after one attempt of a request of class `class`. `backoff` gives the delay the
/// backoff policy proposes; it is asked only when a retry would wait for it.
pub(crate) fn decide(
    class: RetryClass,
    outcome: AttemptOutcome,
    left: Remaining,
    backoff: impl FnOnce() -> Duration,
) -> Decision {
    let safe_to_repeat = class != RetryClass::NonIdempotent;
    let retry = |after: Duration, reason: RetryReason| {
        if after >= left.time {
            let give_up = match reason {
                RetryReason::Throttled => GiveUpReason::Throttled,
                _ => GiveUpReason::Deadline,
            };
            Decision::GiveUp {
                reason: give_up,
                last: reason,
                after,
            }
        } else if left.attempt >= left.max_attempts {
            let give_up = match reason {
                RetryReason::Throttled => GiveUpReason::Throttled,
                _ => GiveUpReason::Attempts,
            };
            Decision::GiveUp {
                reason: give_up,
                last: reason,
                after,
            }
        } else {
            Decision::Retry { after, reason }
        }
    };
    match outcome {
        AttemptOutcome::Status {
            status: 429,
            retry_after,
        } => retry(retry_after.unwrap_or_else(backoff), RetryReason::Throttled),
        AttemptOutcome::Status { status: 401, .. } if left.reauthenticated => Decision::GiveUp {
            reason: GiveUpReason::Unauthorized,
            last: RetryReason::Reauthenticated,
            after: Duration::ZERO,
        },
        // A fresh credential is one more attempt: within the attempts allowed like any other.
        AttemptOutcome::Status { status: 401, .. } => {
            match retry(Duration::ZERO, RetryReason::Reauthenticated) {
                Decision::Retry { .. } => Decision::Reauthenticate,
                give_up => give_up,
            }
        }
        AttemptOutcome::Status { status, .. } if status >= 500 => {
            if safe_to_repeat {
                retry(backoff(), RetryReason::Failure)
            } else {
                Decision::OutcomeUnknown
            }
        }
        AttemptOutcome::Status { .. } => Decision::Answer,
        AttemptOutcome::NotSent => retry(backoff(), RetryReason::Failure),
        AttemptOutcome::Timeout | AttemptOutcome::Broken if !safe_to_repeat => {
            Decision::OutcomeUnknown
        }
        AttemptOutcome::Timeout | AttemptOutcome::Broken => retry(backoff(), RetryReason::Failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptOutcome::*;
    use Decision::*;
    use RetryClass::*;

    const S: Duration = Duration::from_secs(1);

    fn left(attempt: u32) -> Remaining {
        Remaining {
            attempt,
            max_attempts: 4,
            time: 30 * S,
            reauthenticated: false,
        }
    }

    fn status(status: u16) -> AttemptOutcome {
        Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn every_class_and_outcome() {
        let retry = |after, reason| Retry { after, reason };
        let give_up = |reason, last, after| GiveUp {
            reason,
            last,
            after,
        };
        let late = Remaining {
            time: S / 2,
            ..left(1)
        };
        let reauthed = Remaining {
            reauthenticated: true,
            ..left(2)
        };
        let wait_5 = Status {
            status: 429,
            retry_after: Some(5 * S),
        };
        #[rustfmt::skip]
        let table: &[(RetryClass, AttemptOutcome, Remaining, Decision)] = &[
            // Answers.
            (Read, status(200), left(1), Answer),
            (NonIdempotent, status(201), left(1), Answer),
            (NonIdempotent, status(404), left(1), Answer),
            (Read, status(400), left(1), Answer),
            // 429: wait as told, else back off; never past the deadline or the attempts allowed.
            (NonIdempotent, wait_5, left(1), retry(5 * S, RetryReason::Throttled)),
            (Read, status(429), left(1), retry(S, RetryReason::Throttled)),
            (Read, wait_5, Remaining { time: 4 * S, ..left(1) }, give_up(GiveUpReason::Throttled, RetryReason::Throttled, 5 * S)),
            (Read, status(429), left(4), give_up(GiveUpReason::Throttled, RetryReason::Throttled, S)),
            // 401: once with a fresh credential, then unauthorized.
            (NonIdempotent, status(401), left(1), Reauthenticate),
            (Read, status(401), reauthed, give_up(GiveUpReason::Unauthorized, RetryReason::Reauthenticated, Duration::ZERO)),
            (Read, status(401), left(4), give_up(GiveUpReason::Attempts, RetryReason::Reauthenticated, Duration::ZERO)),
            (Read, status(401), Remaining { time: Duration::ZERO, ..left(1) }, give_up(GiveUpReason::Deadline, RetryReason::Reauthenticated, Duration::ZERO)),
            // 5xx: repeat what is safe to repeat; a create or send may have been stored.
            (Read, status(503), left(1), retry(S, RetryReason::Failure)),
            (Idempotent, status(500), left(2), retry(S, RetryReason::Failure)),
            (NonIdempotent, status(503), left(1), OutcomeUnknown),
            (Read, status(502), left(4), give_up(GiveUpReason::Attempts, RetryReason::Failure, S)),
            (Read, status(500), late, give_up(GiveUpReason::Deadline, RetryReason::Failure, S)),
            // Timeouts and broken connections: the same.
            (Read, Timeout, left(1), retry(S, RetryReason::Failure)),
            (NonIdempotent, Timeout, left(1), OutcomeUnknown),
            (NonIdempotent, Broken, left(1), OutcomeUnknown),
            (Idempotent, Broken, left(1), retry(S, RetryReason::Failure)),
            // Never sent: safe for every class.
            (NonIdempotent, NotSent, left(1), retry(S, RetryReason::Failure)),
            (NonIdempotent, NotSent, left(4), give_up(GiveUpReason::Attempts, RetryReason::Failure, S)),
        ];
        for (class, outcome, left, expected) in table {
            assert_eq!(
                decide(*class, *outcome, *left, || S),
                *expected,
                "{class:?} {outcome:?} {left:?}"
            );
        }
    }
}
