//! One attempt of a job: the HTTP exchange (its span and metrics), the retry decision
//! ([`policy::decide`]) carried out, and the job answered or handed back to the actor.

use std::sync::atomic::Ordering;
use std::time::Duration;

use backoff::backoff::Backoff;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::Instrument;

use super::lane::LaneParts;
use super::policy::{self, AttemptOutcome, Decision, GiveUpReason, Remaining, RetryReason};
use super::transport::AttemptError;
use super::{DispatchMsg, DispatcherHandle, Job, UpstreamResponse};
use crate::actors::auth::Credential;
use crate::error::CallError;
use crate::sunco::wire::ErrorBody;
use crate::telemetry::{context_headers, kv};

/// The `status` attribute of an attempt: the HTTP status, or what went wrong before one came.
fn status_label(outcome: &Result<(u16, Option<Duration>, Bytes), AttemptError>) -> String {
    match outcome {
        Ok((status, _, _)) => status.to_string(),
        Err(AttemptError::NotSent(_)) => "connect_error".into(),
        Err(AttemptError::Timeout) => "timeout".into(),
        Err(AttemptError::Broken(_)) => "broken".into(),
    }
}

/// What one exchange came to: the outcome the policy reads, why (for messages and logs), and
/// the answer's body (empty when none came).
struct Exchanged {
    outcome: AttemptOutcome,
    why: String,
    body: Bytes,
}

impl Exchanged {
    /// The HTTP status, or 0 when no answer came.
    fn status(&self) -> u16 {
        match self.outcome {
            AttemptOutcome::Status { status, .. } => status,
            _ => 0,
        }
    }
}

/// Sends the job's request once, within its deadline, in a span of its own; counts it.
async fn exchange(job: &Job, parts: &LaneParts, credential: &Credential) -> Exchanged {
    let LaneParts {
        transport, metrics, ..
    } = parts;
    let remaining = job.deadline.saturating_duration_since(Instant::now());
    let template = job.req.template();
    let span = tracing::info_span!(
        parent: &job.span,
        "sunco.http",
        otel.name = %format!("{} {template}", job.req.method),
        otel.kind = "client",
        http.request.method = %job.req.method,
        server.address = %transport.host,
        server.port = i64::from(transport.port),
        url.template = %template,
        sunco.operation = job.req.operation,
        http.request.resend_count = i64::from(job.attempts) - 1,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    let started = Instant::now();
    let trace = context_headers(&span);
    let outcome = transport
        .send(&job.req, &credential.header, remaining, trace)
        .instrument(span.clone())
        .await;
    let status = status_label(&outcome);
    match &outcome {
        Ok((code, _, _)) => {
            span.record("http.response.status_code", i64::from(*code));
            if *code >= 400 {
                span.record("error.type", status.as_str());
            }
        }
        Err(_) => {
            span.record("error.type", status.as_str());
        }
    }
    let attrs = [
        kv("operation", job.req.operation),
        kv("status", status.clone()),
    ];
    metrics.upstream_requests.add(1, &attrs);
    metrics
        .upstream_duration
        .record(started.elapsed().as_secs_f64(), &attrs);
    let (outcome, why, body) = match outcome {
        Ok((status, retry_after, body)) => (
            AttemptOutcome::Status {
                status,
                retry_after,
            },
            format!("the upstream answered {status}"),
            body,
        ),
        Err(AttemptError::NotSent(reason)) => (
            AttemptOutcome::NotSent,
            format!("cannot connect: {reason}"),
            Bytes::new(),
        ),
        Err(AttemptError::Timeout) => (
            AttemptOutcome::Timeout,
            "no answer before the deadline".to_owned(),
            Bytes::new(),
        ),
        Err(AttemptError::Broken(reason)) => (
            AttemptOutcome::Broken,
            format!("the connection broke: {reason}"),
            Bytes::new(),
        ),
    };
    Exchanged { outcome, why, body }
}

/// Runs one attempt of `job` and carries out the policy's decision.
pub(super) async fn attempt(mut job: Job, me: DispatcherHandle) {
    // Set when the actor first started, before any attempt could be admitted.
    let Some(parts) = me.lane.parts.get() else {
        me.lane.leave();
        return; // dropped unanswered: the caller offers the job to the actor
    };
    job.attempts += 1;
    let credential = match job.credential.take() {
        Some(c) => c,
        None => match parts.auth.credential(job.deadline).await {
            Ok(c) => c,
            Err(e) => return finish(job, Err(e), &me).await,
        },
    };
    let done = exchange(&job, parts, &credential).await;
    let remaining = Remaining {
        attempt: job.attempts,
        max_attempts: parts.limits.max_attempts,
        time: job.deadline.saturating_duration_since(Instant::now()),
        reauthenticated: job.reauthed,
    };
    let backoff = &mut job.backoff;
    let decision = policy::decide(job.req.retry, done.outcome, remaining, || {
        backoff.next_backoff().unwrap_or(parts.limits.max_backoff)
    });
    if let AttemptOutcome::Status {
        status: 429,
        retry_after,
    } = done.outcome
    {
        let op = job.req.operation;
        parts.metrics.throttled.add(1, &[kv("operation", op)]);
        tracing::info!(
            parent: &job.span,
            retry_after_ms = retry_after.map(|d| d.as_millis() as i64),
            attempt = i64::from(job.attempts),
            "throttled by the upstream (429)"
        );
    }
    let (delay, reason) = match decision {
        Decision::Retry { after, reason } => (after, reason),
        Decision::Reauthenticate => {
            job.reauthed = true;
            let fresh = (parts.auth)
                .after_rejection(credential.generation, job.deadline)
                .await;
            let Ok(fresh) = fresh else {
                let e = upstream_error(job.req.operation, done.status(), &done.body);
                return finish(job, Err(e), &me).await;
            };
            job.credential = Some(fresh);
            (Duration::ZERO, RetryReason::Reauthenticated)
        }
        decision => {
            let answer = answer(&job, decision, done);
            return finish(job, answer, &me).await;
        }
    };
    retry(job, delay, reason, done, parts, &me).await;
}

/// The answer a decision that ends the job gives: the upstream's answer, its error, or why the
/// call was given up.
fn answer(job: &Job, decision: Decision, done: Exchanged) -> Result<UpstreamResponse, CallError> {
    let op = job.req.operation;
    let status = done.status();
    let why = done.why;
    let err = match decision {
        Decision::Answer if (200..300).contains(&status) => {
            return Ok(UpstreamResponse {
                status,
                body: done.body,
            });
        }
        Decision::OutcomeUnknown => CallError::OutcomeUnknown {
            operation: op,
            reason: match done.outcome {
                AttemptOutcome::Status { .. } => why,
                _ => "the connection closed or timed out after the request was sent".to_owned(),
            },
        },
        Decision::GiveUp {
            reason: give_up,
            after,
            ..
        } => {
            let wait = after.max(Duration::from_secs(1));
            match give_up {
                GiveUpReason::Throttled => CallError::RateLimited {
                    operation: op,
                    retry_after: wait,
                },
                GiveUpReason::Deadline => job.deadline_error(format!("last attempt: {why}"), wait),
                GiveUpReason::Attempts => CallError::Unreachable {
                    operation: op,
                    reason: format!("{} attempts failed; last: {why}", job.attempts),
                },
                GiveUpReason::Unauthorized => CallError::Unauthorized {
                    operation: op,
                    reason: match upstream_error(op, status, &done.body) {
                        CallError::Upstream { code, title, .. } => format!("{code}: {title}"),
                        other => other.to_string(),
                    },
                },
            }
        }
        // An error status to hand over (a retry or a re-authentication never ends here).
        _ => upstream_error(op, status, &done.body),
    };
    Err(err)
}

/// Hands `job` back to the actor to go again after `delay`; counts and logs the retry.
async fn retry(
    job: Job,
    delay: Duration,
    reason: RetryReason,
    done: Exchanged,
    parts: &LaneParts,
    me: &DispatcherHandle,
) {
    let op = job.req.operation;
    let throttled = reason == RetryReason::Throttled;
    let retry_after = match done.outcome {
        AttemptOutcome::Status { retry_after, .. } if throttled => retry_after,
        _ => None,
    };
    let metrics = &parts.metrics;
    metrics
        .retries
        .add(1, &[kv("operation", op), kv("reason", reason.as_str())]);
    metrics
        .backoff
        .add(delay.as_secs_f64(), &[kv("reason", reason.as_str())]);
    tracing::info!(
        parent: &job.span,
        attempt = i64::from(job.attempts),
        delay_ms = delay.as_millis() as i64,
        reason = reason.as_str(),
        why = %done.why,
        "retrying"
    );
    let deadline = job.deadline;
    me.lane.leave();
    let msg = DispatchMsg::Retry {
        job,
        delay,
        throttled,
        retry_after,
    };
    // If no incarnation takes the job before its deadline, it is dropped unanswered and the
    // caller's handle reports the deadline; the job was in a safe-to-send state.
    let _ = me.slot.send(msg, deadline).await;
}

/// Answers the job and ends its attempt: the slot is given back, a success raises the send
/// rate, and the actor hears of it only when calls are waiting for the slot.
pub(super) async fn finish(
    job: Job,
    result: Result<UpstreamResponse, CallError>,
    me: &DispatcherHandle,
) {
    let ok = result.is_ok();
    job.answer(result);
    me.lane.leave();
    if let Some(LaneParts {
        budget, metrics, ..
    }) = me.lane.parts.get()
    {
        if ok && let Err(e) = budget.succeeded().await {
            tracing::debug!("cannot tell the rate budget about a success: {e}");
        }
        metrics
            .in_flight
            .record(me.lane.in_flight.load(Ordering::Relaxed) as u64, &[]);
        metrics.send_rate.record(budget.rate(), &[]);
    }
    if me.lane.queued.load(Ordering::SeqCst) > 0 {
        let _ = me
            .slot
            .send(
                DispatchMsg::Finished,
                Instant::now() + Duration::from_secs(1),
            )
            .await;
    }
}

/// Reads the API's error body into a [`CallError::Upstream`].
pub(crate) fn upstream_error(operation: &'static str, status: u16, body: &[u8]) -> CallError {
    let (code, title) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) if !b.errors.is_empty() => (b.errors[0].code.clone(), b.errors[0].title.clone()),
        _ => (format!("http_{status}"), "no error body".to_owned()),
    };
    CallError::Upstream {
        operation,
        status,
        code,
        title,
    }
}
