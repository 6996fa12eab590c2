//! The dispatcher: every upstream HTTP call goes through it, and nothing else can reach the
//! upstream (the HTTP client is built only here, in [`Transport`]).
//!
//! The actor owns the *when*: a token bucket (requests/s and burst), a cap on requests in flight,
//! a bounded queue, the pause a `Retry-After` imposes, and the send rate it lowers after a 429 and
//! raises again step by step on success. Spawned tasks own the *how*: one task per attempt does
//! the HTTP exchange, classifies the outcome, and either answers the caller or hands the job back
//! for another attempt.
//!
//! A call that finds nothing waiting takes the express lane: its own task takes an in-flight
//! slot and a permit the budget can give without asking its store ([`RateBudget::try_take`]) and
//! starts the attempt itself, with no round trip through the actor. Whatever must wait (a full
//! in-flight cap, an empty bucket, a queue, a retry) goes through the actor as before; the counts
//! they share ([`Lane`]) keep one cap for both.
//!
//! Retries are method-aware (see [`RetryClass`]): reads and idempotent writes are retried after
//! 5xx, timeouts and broken connections; a create or a send is retried only when it provably never
//! reached the upstream (429, connection refused) and is otherwise reported as
//! [`CallError::OutcomeUnknown`]. A job held by the actor is therefore always safe to send, which
//! is why a handle may offer it again to the next incarnation when the actor dies.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff;
use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

mod policy;

use policy::{AttemptOutcome, Budget, Decision, GiveUpReason, RetryReason};

use super::auth::{AuthHandle, Credential};
use super::{Slot, ask};
use crate::call::{Call, Mode};
use crate::error::CallError;
use crate::secret::Secret;
use crate::shared::RateBudget;
use crate::sunco::endpoints::{Endpoint, HttpRequest, PlannedRequest, RetryClass};
use crate::sunco::wire::ErrorBody;
use crate::telemetry::{Metrics, context_headers, kv};

/// The knobs of admission and retry. Defaults suit one app key against Sunshine Conversations.
#[derive(Debug, Clone)]
pub struct DispatchLimits {
    /// Requests per second the bucket refills at, when the upstream is not pushing back.
    pub rate: f64,
    /// Requests that may go at once after a quiet period.
    pub burst: u32,
    /// Requests awaiting an answer at most.
    pub max_in_flight: usize,
    /// Calls waiting for admission at most; past it, calls fail at once with "busy".
    pub queue_capacity: usize,
    /// How long one call may take in all, queueing and retries included.
    pub deadline: Duration,
    /// First retry delay; doubles (with ±50% jitter) up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts of one call at most, the first included.
    pub max_attempts: u32,
    /// The lowest share of `rate` that 429s can push the send rate down to.
    pub min_rate_share: f64,
}

impl Default for DispatchLimits {
    fn default() -> Self {
        Self {
            rate: 100.0,
            burst: 50,
            max_in_flight: 64,
            queue_capacity: 2048,
            deadline: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_attempts: 8,
            min_rate_share: 0.05,
        }
    }
}

impl DispatchLimits {
    /// The `backoff` crate's exponential policy with every cap explicit: no elapsed-time limit
    /// of its own (the call's deadline is the limit), bounded interval, bounded attempts (counted
    /// by the job).
    fn backoff(&self) -> ExponentialBackoff {
        backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(self.initial_backoff)
            .with_multiplier(2.0)
            .with_randomization_factor(0.5)
            .with_max_interval(self.max_backoff)
            .with_max_elapsed_time(None)
            .build()
    }
}

/// What the upstream answered.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    pub status: u16,
    pub body: Bytes,
}

/// A snapshot of the dispatcher's admission state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispatchStats {
    pub queued: usize,
    pub in_flight: usize,
    /// The current send rate, requests/s.
    pub rate: f64,
    /// Upstream attempts started by this incarnation.
    pub attempts: u64,
    /// 429 answers seen by this incarnation.
    pub throttled: u64,
}

type Reply = oneshot::Sender<Result<UpstreamResponse, CallError>>;

pub struct Job {
    req: Arc<HttpRequest>,
    deadline: Instant,
    budget: Duration,
    reply: Reply,
    attempts: u32,
    reauthed: bool,
    credential: Option<Credential>,
    backoff: ExponentialBackoff,
    /// The span of the whole call (queueing and every attempt); attempts are its children.
    span: tracing::Span,
}

impl Job {
    fn answer(self, result: Result<UpstreamResponse, CallError>) {
        let _ = self.reply.send(result);
    }

    fn deadline_error(&self, why: impl Into<String>, retry_after: Duration) -> CallError {
        CallError::Deadline {
            operation: self.req.operation,
            deadline: self.budget,
            why: why.into(),
            retry_after,
        }
    }
}

pub enum DispatchMsg {
    Submit(Job),
    /// A job back from an attempt, to go again after `delay`.
    Retry {
        job: Job,
        delay: Duration,
        /// The attempt was answered 429.
        throttled: bool,
        /// The upstream's `Retry-After`, which pauses every request.
        retry_after: Option<Duration>,
    },
    /// A delayed retry whose wait is over.
    Resume(Job),
    /// An attempt ended and its job was answered while calls were waiting: admit the next.
    Finished,
    Pump,
    Stats(oneshot::Sender<DispatchStats>),
}

/// The HTTP client. Constructed here and nowhere else.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
    base: Arc<str>,
    host: Arc<str>,
    port: u16,
}

enum AttemptError {
    /// The connection was never made: the upstream did not see the request.
    NotSent(String),
    /// The request may have reached the upstream but no answer came in time.
    Timeout,
    /// The connection broke after the request was written.
    Broken(String),
}

impl Transport {
    pub fn new(base: &Url) -> Result<Self, CallError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("zendesk-messaging-mcp/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            // Redirects are answers to report, not to follow with the credential attached.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CallError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base.as_str().trim_end_matches('/').into(),
            host: base.host_str().unwrap_or_default().into(),
            port: base.port_or_known_default().unwrap_or(443),
        })
    }

    async fn send(
        &self,
        req: &HttpRequest,
        auth: &Secret,
        timeout: Duration,
        trace: Vec<(String, String)>,
    ) -> Result<(u16, Option<Duration>, Bytes), AttemptError> {
        let mut url = format!("{}{}", self.base, req.path);
        if !req.query.is_empty() {
            url.push('?');
            url.push_str(&encode_query(&req.query));
        }
        let mut authorization = reqwest::header::HeaderValue::from_str(auth.expose())
            .map_err(|_| AttemptError::NotSent("the credential is not a valid header".into()))?;
        // Keeps the credential out of any Debug output of the request.
        authorization.set_sensitive(true);
        let mut builder = self
            .client
            .request(req.method.clone(), url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .timeout(timeout);
        for (name, value) in trace {
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(3600.0)));
        let body = response.bytes().await.map_err(classify)?;
        Ok((status, retry_after, body))
    }
}

fn classify(e: reqwest::Error) -> AttemptError {
    if e.is_connect() {
        AttemptError::NotSent(without_url(&e))
    } else if e.is_timeout() {
        AttemptError::Timeout
    } else {
        AttemptError::Broken(without_url(&e))
    }
}

/// The error text without the URL (ids of the caller's data stay out of messages and logs).
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(&format!(" ({url})"), "");
        msg = msg.replace(url.as_str(), "upstream");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn encode_query(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[derive(Clone)]
pub struct DispatcherArgs {
    pub limits: DispatchLimits,
    /// The upstream requests per second (shared by every replica when the store is); it outlives
    /// the actor's restarts.
    pub budget: Arc<dyn RateBudget>,
    pub transport: Transport,
    pub auth: AuthHandle,
    pub me: DispatcherHandle,
    pub metrics: Arc<Metrics>,
}

pub struct Dispatcher;

pub struct DispatchState {
    args: DispatcherArgs,
    queue: VecDeque<Job>,
    /// Jobs coming back for another attempt go before new ones.
    retries: VecDeque<Job>,
    pump_at: Option<Instant>,
    /// The lane's attempt count when this incarnation started.
    attempts_before: u64,
    throttled: u64,
}

impl DispatchState {
    fn schedule(&mut self, myself: &ActorRef<DispatchMsg>, at: Instant) {
        if self.pump_at.is_some_and(|p| p <= at) {
            return;
        }
        self.pump_at = Some(at);
        myself.send_after(at.saturating_duration_since(Instant::now()), || {
            DispatchMsg::Pump
        });
    }

    fn pop(&mut self) -> Option<Job> {
        self.retries.pop_front().or_else(|| self.queue.pop_front())
    }

    /// Puts back a job [`Self::pop`] took. It was first in line, so it goes first again.
    fn put_back(&mut self, job: Job) {
        self.retries.push_front(job);
    }

    /// Starts every job that may go now; schedules the next look when something must wait.
    async fn pump(&mut self, myself: &ActorRef<DispatchMsg>) {
        let now = Instant::now();
        while let Some(job) = self.pop() {
            if job.deadline <= now {
                let err = job.deadline_error(
                    "it waited in the dispatcher's queue behind other calls",
                    Duration::from_secs(1),
                );
                job.answer(Err(err));
                continue;
            }
            let lane = self.args.me.lane.clone();
            let max = self.args.limits.max_in_flight;
            if !lane.enter(max) {
                self.put_back(job);
                // The wait is published before the slots are looked at again: an attempt ending
                // meanwhile either sees it and sends Finished, or has freed its slot already,
                // which this look finds (both sides order their write before their read).
                lane.queued
                    .store(self.queue.len() + self.retries.len(), Ordering::SeqCst);
                if lane.in_flight.load(Ordering::SeqCst) < max {
                    continue;
                }
                return; // the next Finished or Retry pumps again
            }
            let grant = match self.args.budget.grant(1).await {
                Ok(grant) => grant,
                Err(e) => {
                    tracing::warn!("the rate budget is unavailable: {e}");
                    lane.leave();
                    self.put_back(job);
                    self.schedule(myself, now + Duration::from_millis(100));
                    return;
                }
            };
            if grant.granted == 0 {
                lane.leave();
                // Paused past the job's deadline: say when to come back rather than make it wait.
                if grant.paused && now + grant.wait >= job.deadline {
                    let operation = job.req.operation;
                    job.answer(Err(CallError::RateLimited {
                        operation,
                        retry_after: grant.wait,
                    }));
                    continue;
                }
                self.put_back(job);
                self.schedule(myself, now + grant.wait);
                return;
            }
            lane.attempts.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(attempt(job, self.args.me.clone()));
        }
    }
}

impl Actor for Dispatcher {
    type Msg = DispatchMsg;
    type State = DispatchState;
    type Arguments = DispatcherArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<DispatchMsg>,
        args: DispatcherArgs,
    ) -> Result<DispatchState, ActorProcessingErr> {
        let lane = &args.me.lane;
        lane.parts.get_or_init(|| LaneParts {
            budget: args.budget.clone(),
            transport: args.transport.clone(),
            auth: args.auth.clone(),
            limits: args.limits.clone(),
            metrics: args.metrics.clone(),
        });
        Ok(DispatchState {
            attempts_before: lane.attempts.load(Ordering::Relaxed),
            args,
            queue: VecDeque::new(),
            retries: VecDeque::new(),
            pump_at: None,
            throttled: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<DispatchMsg>,
        msg: DispatchMsg,
        state: &mut DispatchState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DispatchMsg::Submit(job) => {
                let queued = state.queue.len() + state.retries.len();
                if queued >= state.args.limits.queue_capacity {
                    let rate = state.args.budget.rate();
                    let secs = (queued as f64 / rate.max(1.0)).ceil().max(1.0);
                    job.answer(Err(CallError::Busy {
                        queued,
                        retry_after: Duration::from_secs_f64(secs),
                    }));
                } else {
                    state.queue.push_back(job);
                }
            }
            DispatchMsg::Retry {
                job,
                delay,
                throttled,
                retry_after,
            } => {
                // The pause and the slow-down hold for every dispatcher sharing the budget; a
                // budget that did not hear of the 429 cannot hold the pause, so this job waits
                // out the Retry-After itself.
                let mut paused = retry_after.is_some();
                if throttled {
                    state.throttled += 1;
                    if let Err(e) = state.args.budget.throttled(retry_after).await {
                        tracing::warn!("cannot tell the rate budget about a 429: {e}");
                        paused = false;
                    }
                }
                if paused {
                    state.retries.push_back(job);
                } else if let Some(wait) = retry_after {
                    myself.send_after(wait, move || DispatchMsg::Resume(job));
                } else if delay.is_zero() {
                    state.retries.push_front(job);
                } else {
                    myself.send_after(delay, move || DispatchMsg::Resume(job));
                }
            }
            DispatchMsg::Resume(job) => state.retries.push_back(job),
            DispatchMsg::Finished => {}
            DispatchMsg::Pump => state.pump_at = None,
            DispatchMsg::Stats(reply) => {
                let lane = &state.args.me.lane;
                let _ = reply.send(DispatchStats {
                    queued: state.queue.len() + state.retries.len(),
                    in_flight: lane.in_flight.load(Ordering::Relaxed),
                    rate: state.args.budget.rate(),
                    attempts: lane.attempts.load(Ordering::Relaxed) - state.attempts_before,
                    throttled: state.throttled,
                });
                return Ok(());
            }
        }
        state.pump(&myself).await;
        let queued = state.queue.len() + state.retries.len();
        let lane = &state.args.me.lane;
        lane.queued.store(queued, Ordering::SeqCst);
        let m = &state.args.metrics;
        m.queue_depth.record(queued as u64, &[]);
        m.in_flight
            .record(lane.in_flight.load(Ordering::Relaxed) as u64, &[]);
        m.send_rate.record(state.args.budget.rate(), &[]);
        Ok(())
    }
}

/// What the callers and the actor share: the in-flight count under one cap, the jobs the actor
/// holds, the attempts started, and what a caller needs to start an attempt itself (set when
/// the actor first starts).
#[derive(Default)]
pub(crate) struct Lane {
    in_flight: AtomicUsize,
    queued: AtomicUsize,
    attempts: AtomicU64,
    parts: OnceLock<LaneParts>,
}

/// What an attempt needs besides its job and the handle.
struct LaneParts {
    budget: Arc<dyn RateBudget>,
    transport: Transport,
    auth: AuthHandle,
    limits: DispatchLimits,
    metrics: Arc<Metrics>,
}

impl Lane {
    /// Takes an in-flight slot if fewer than `max` are taken.
    fn enter(&self, max: usize) -> bool {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a slot [`Self::enter`] took.
    fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The `status` attribute of an attempt: the HTTP status, or what went wrong before one came.
fn status_label(outcome: &Result<(u16, Option<Duration>, Bytes), AttemptError>) -> String {
    match outcome {
        Ok((status, _, _)) => status.to_string(),
        Err(AttemptError::NotSent(_)) => "connect_error".into(),
        Err(AttemptError::Timeout) => "timeout".into(),
        Err(AttemptError::Broken(_)) => "broken".into(),
    }
}

async fn attempt(mut job: Job, me: DispatcherHandle) {
    // Set when the actor first started, before any attempt could be admitted.
    let Some(LaneParts {
        transport,
        auth,
        limits,
        metrics,
        ..
    }) = me.lane.parts.get()
    else {
        me.lane.leave();
        return; // dropped unanswered: the caller offers the job to the actor
    };
    job.attempts += 1;
    let credential = match job.credential.take() {
        Some(c) => c,
        None => match auth.credential(job.deadline).await {
            Ok(c) => c,
            Err(e) => return finish(job, Err(e), &me).await,
        },
    };
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
    drop(span);
    let op = job.req.operation;
    let (attempt, why, body) = match outcome {
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
    let budget = Budget {
        attempt: job.attempts,
        max_attempts: limits.max_attempts,
        remaining: job.deadline.saturating_duration_since(Instant::now()),
        reauthenticated: job.reauthed,
    };
    let backoff = &mut job.backoff;
    let decision = policy::decide(job.req.retry, attempt, budget, || {
        backoff.next_backoff().unwrap_or(limits.max_backoff)
    });
    if let AttemptOutcome::Status {
        status: 429,
        retry_after,
    } = attempt
    {
        metrics.throttled.add(1, &[kv("operation", op)]);
        tracing::info!(
            parent: &job.span,
            retry_after_ms = retry_after.map(|d| d.as_millis() as i64),
            attempt = i64::from(job.attempts),
            "throttled by the upstream (429)"
        );
    }
    let status = match attempt {
        AttemptOutcome::Status { status, .. } => status,
        _ => 0,
    };
    let (delay, reason) = match decision {
        Decision::Answer if (200..300).contains(&status) => {
            return finish(job, Ok(UpstreamResponse { status, body }), &me).await;
        }
        Decision::Answer => {
            return finish(job, Err(upstream_error(op, status, &body)), &me).await;
        }
        Decision::OutcomeUnknown => {
            let reason = match attempt {
                AttemptOutcome::Status { .. } => why,
                _ => "the connection closed or timed out after the request was sent".to_owned(),
            };
            let err = CallError::OutcomeUnknown {
                operation: op,
                reason,
            };
            return finish(job, Err(err), &me).await;
        }
        Decision::Reauthenticate => {
            job.reauthed = true;
            match auth
                .after_rejection(credential.generation, job.deadline)
                .await
            {
                Ok(fresh) => {
                    job.credential = Some(fresh);
                    (Duration::ZERO, RetryReason::Reauthenticated)
                }
                Err(_) => {
                    return finish(job, Err(upstream_error(op, status, &body)), &me).await;
                }
            }
        }
        Decision::Retry { after, reason } => (after, reason),
        Decision::GiveUp {
            reason: give_up,
            after,
            ..
        } => {
            let wait = after.max(Duration::from_secs(1));
            let err = match give_up {
                GiveUpReason::Throttled => CallError::RateLimited {
                    operation: op,
                    retry_after: wait,
                },
                GiveUpReason::Deadline => job.deadline_error(format!("last attempt: {why}"), wait),
                GiveUpReason::Attempts => CallError::Unreachable {
                    operation: op,
                    reason: format!("{} attempts failed; last: {why}", job.attempts),
                },
                GiveUpReason::Unauthorized => {
                    let reason = match upstream_error(op, status, &body) {
                        CallError::Upstream { code, title, .. } => format!("{code}: {title}"),
                        other => other.to_string(),
                    };
                    CallError::Unauthorized {
                        operation: op,
                        reason,
                    }
                }
            };
            return finish(job, Err(err), &me).await;
        }
    };
    let throttled = reason == RetryReason::Throttled;
    let retry_after = match attempt {
        AttemptOutcome::Status { retry_after, .. } if throttled => retry_after,
        _ => None,
    };
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
        why = %why,
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
async fn finish(job: Job, result: Result<UpstreamResponse, CallError>, me: &DispatcherHandle) {
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
pub fn upstream_error(operation: &'static str, status: u16, body: &[u8]) -> CallError {
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

/// How the rest of the server calls the upstream.
#[derive(Clone)]
pub struct DispatcherHandle {
    pub(crate) slot: Arc<Slot<DispatchMsg>>,
    app_id: Arc<str>,
    /// A call's deadline, milliseconds: one value for every clone, which a settings reload
    /// changes (calls already made keep theirs).
    deadline: Arc<std::sync::atomic::AtomicU64>,
    backoff: Arc<DispatchLimits>,
    lane: Arc<Lane>,
}

impl DispatcherHandle {
    pub(crate) fn new(slot: Arc<Slot<DispatchMsg>>, app_id: &str, limits: &DispatchLimits) -> Self {
        Self {
            slot,
            app_id: app_id.into(),
            deadline: Arc::new(std::sync::atomic::AtomicU64::new(
                limits.deadline.as_millis() as u64,
            )),
            backoff: Arc::new(limits.clone()),
            lane: Arc::default(),
        }
    }

    /// A call's deadline now.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Sets the deadline of the calls made from now on (a reloaded upstream timeout).
    pub fn set_deadline(&self, deadline: Duration) {
        self.deadline.store(
            deadline.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The app every request addresses.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Sends `endpoint` for `call` and returns the raw answer (2xx only; anything else is an
    /// error). For a dry run a write is not sent: [`CallError::DryRun`] carries the request
    /// (reads go out as usual). A cancelled call sends nothing more ([`CallError::Cancelled`]);
    /// a call's own deadline bounds the request's.
    pub async fn call(
        &self,
        call: &Call,
        endpoint: &Endpoint,
    ) -> Result<UpstreamResponse, CallError> {
        let req = Arc::new(endpoint.to_http(&self.app_id));
        if req.retry != RetryClass::Read && call.mode() == Mode::DryRun {
            return Err(CallError::DryRun {
                request: Box::new(PlannedRequest::from(&*req)),
            });
        }
        if call.is_cancelled() {
            return Err(CallError::Cancelled {
                operation: req.operation,
            });
        }
        let span = tracing::info_span!(
            parent: call.span(),
            "sunco.dispatch",
            otel.name = %format!("dispatch {}", req.operation),
            sunco.operation = req.operation,
            error.type = tracing::field::Empty,
        );
        let result = self
            .dispatch(req, call.deadline(), span.clone())
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            span.record("error.type", e.class().as_str());
        }
        result
    }

    async fn dispatch(
        &self,
        req: Arc<HttpRequest>,
        call_deadline: Option<Instant>,
        span: tracing::Span,
    ) -> Result<UpstreamResponse, CallError> {
        let now = Instant::now();
        let deadline =
            call_deadline.map_or(now + self.deadline(), |d| d.min(now + self.deadline()));
        let budget = deadline.saturating_duration_since(now);
        let job = |reply| Job {
            req: req.clone(),
            deadline,
            budget,
            reply,
            attempts: 0,
            reauthed: false,
            credential: None,
            backoff: self.backoff.backoff(),
            span: span.clone(),
        };
        // The job's own deadline decides (it knows whether the request was sent); the grace
        // only covers the answer's way back.
        let until = deadline + Duration::from_secs(2);
        let unavailable = |reason: String| CallError::Deadline {
            operation: req.operation,
            deadline: budget,
            why: format!("dispatcher: {reason}"),
            retry_after: Duration::from_secs(1),
        };
        if self.express() {
            let (reply, answer) = oneshot::channel();
            tokio::spawn(attempt(job(reply), self.clone()));
            match tokio::time::timeout_at(until, answer).await {
                Ok(Ok(result)) => return result,
                // Dropped unanswered (no incarnation took its retry): offered to the actor.
                Ok(Err(_)) => {}
                Err(_) => return Err(unavailable("no answer before the deadline".into())),
            }
        }
        match ask(&self.slot, until, |reply| DispatchMsg::Submit(job(reply))).await {
            Ok(result) => result,
            Err(CallError::Unavailable { reason, .. }) => Err(unavailable(reason)),
            Err(e) => Err(e),
        }
    }

    /// The express lane: when no call waits in the actor, an in-flight slot is free and the
    /// budget gives a permit at once, the slot and the permit are taken for the caller to
    /// start the attempt itself.
    fn express(&self) -> bool {
        let lane = &self.lane;
        let Some(parts) = lane.parts.get() else {
            return false;
        };
        // A stopped dispatcher (shut down, or between incarnations) takes no calls this way.
        if self.slot.current().is_none()
            || lane.queued.load(Ordering::SeqCst) > 0
            || !lane.enter(parts.limits.max_in_flight)
        {
            return false;
        }
        if !parts.budget.try_take() {
            lane.leave();
            return false;
        }
        lane.attempts.fetch_add(1, Ordering::Relaxed);
        parts
            .metrics
            .in_flight
            .record(lane.in_flight.load(Ordering::Relaxed) as u64, &[]);
        true
    }

    /// Sends `endpoint` for `call` and decodes the answer's JSON.
    pub async fn call_json<T: DeserializeOwned>(
        &self,
        call: &Call,
        endpoint: &Endpoint,
    ) -> Result<T, CallError> {
        let response = self.call(call, endpoint).await?;
        serde_json::from_slice(&response.body).map_err(|e| {
            CallError::Internal(format!(
                "cannot read the answer to {}: {e}",
                endpoint.operation()
            ))
        })
    }

    pub async fn stats(&self) -> Result<DispatchStats, CallError> {
        ask(
            &self.slot,
            Instant::now() + Duration::from_secs(5),
            DispatchMsg::Stats,
        )
        .await
    }
}
