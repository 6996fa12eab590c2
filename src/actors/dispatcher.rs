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
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backoff::ExponentialBackoff;
use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

mod attempt;
mod lane;
mod policy;
mod transport;

use attempt::attempt;
pub(crate) use lane::Lane;
use lane::LaneParts;
pub(crate) use transport::Transport;

use super::auth::{AuthHandle, Credential};
use super::{Slot, ask};
use crate::call::{Call, Mode};
use crate::error::CallError;
use crate::shared::RateBudget;
use crate::sunco::endpoints::{Endpoint, HttpRequest, PlannedRequest, RetryClass};
use crate::telemetry::Metrics;

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
    pub(crate) min_rate_share: f64,
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
    pub(crate) body: Bytes,
}

/// A snapshot of the dispatcher's admission state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispatchStats {
    pub queued: usize,
    pub(crate) in_flight: usize,
    /// The current send rate, requests/s.
    pub rate: f64,
    /// Upstream attempts started by this incarnation.
    pub(crate) attempts: u64,
    /// 429 answers seen by this incarnation.
    pub throttled: u64,
}

type Reply = oneshot::Sender<Result<UpstreamResponse, CallError>>;

pub struct Job {
    req: Arc<HttpRequest>,
    deadline: Instant,
    /// How long the call was given in all (for the deadline's message).
    timeout: Duration,
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
            deadline: self.timeout,
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
    /// Learn the budget in force from its store and export it: a shared budget another
    /// replica reloaded or slowed shows here too, even while this replica sends nothing.
    Refresh,
}

/// How often the dispatcher learns the budget in force ([`DispatchMsg::Refresh`]).
const REFRESH_EVERY: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub(crate) struct DispatcherArgs {
    pub(crate) limits: DispatchLimits,
    /// The upstream requests per second (shared by every replica when the store is); it outlives
    /// the actor's restarts.
    pub(crate) budget: Arc<dyn RateBudget>,
    pub(crate) transport: Transport,
    pub(crate) auth: AuthHandle,
    pub(crate) me: DispatcherHandle,
    pub(crate) metrics: Arc<Metrics>,
}

pub(crate) struct Dispatcher;

pub(crate) struct DispatchState {
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
        myself: ActorRef<DispatchMsg>,
        args: DispatcherArgs,
    ) -> Result<DispatchState, ActorProcessingErr> {
        // Ends with the actor (ractor stops an interval whose actor is gone).
        myself.send_interval(REFRESH_EVERY, || DispatchMsg::Refresh);
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
            DispatchMsg::Refresh => {
                // In a task of its own: a slow store never holds the queue up.
                let budget = state.args.budget.clone();
                let metrics = state.args.metrics.clone();
                tokio::spawn(async move {
                    if budget.refresh().await.is_ok() {
                        metrics.send_rate.record(budget.rate(), &[]);
                    }
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
    pub(crate) fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Sets the deadline of the calls made from now on (a reloaded upstream timeout).
    pub(crate) fn set_deadline(&self, deadline: Duration) {
        self.deadline.store(
            deadline.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
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
        let operation = req.operation;
        let dispatching = self
            .dispatch(req, call.deadline(), span.clone())
            .instrument(span.clone());
        let result = match call.progress() {
            None => dispatching.await,
            Some(progress) => told_while_waiting(dispatching, call, progress, operation).await,
        };
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
        let timeout = deadline.saturating_duration_since(now);
        let job = |reply| Job {
            req: req.clone(),
            deadline,
            timeout,
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
            deadline: timeout,
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

    /// Sends `endpoint` for `call` and decodes the answer's JSON.
    pub(crate) async fn call_json<T: DeserializeOwned>(
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

/// Waits for a request's answer, telling the client once a second after the first that the
/// call still waits for the upstream (the request budget, a `Retry-After` pause, the queue or
/// the request itself), so a long wait is not silence.
async fn told_while_waiting(
    answer: impl std::future::Future<Output = Result<UpstreamResponse, CallError>>,
    call: &Call,
    progress: &crate::call::Progress,
    operation: &str,
) -> Result<UpstreamResponse, CallError> {
    let started = Instant::now();
    let mut ticks =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    tokio::pin!(answer);
    loop {
        tokio::select! {
            result = &mut answer => return result,
            _ = ticks.tick(), if !call.is_cancelled() => {
                let waited = started.elapsed().as_secs();
                let told = format!(
                    "waiting for Sunshine Conversations ({operation}): {waited} s (the request budget, a Retry-After pause, the queue or the request itself)"
                );
                progress.tell(waited as f64, None, told).await;
            }
        }
    }
}
