//! The supervisor: starts the four actors linked to itself and restarts any that fails or stops.
//!
//! A restart refills the actor's [`Slot`], so handles keep working. Restarts are counted in a
//! sliding window; more than the limit (a restart storm) stops the supervisor with a log line that
//! says why, and the process exits rather than loop.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::auth::{AuthActor, AuthArgs, AuthHandle, AuthMsg};
use super::delivery::{DeliveryTracker, TrackerArgs, TrackerHandle, TrackerLimits, TrackerMsg};
use super::dispatcher::{
    DispatchLimits, DispatchMsg, Dispatcher, DispatcherArgs, DispatcherHandle, Transport,
};
use super::switchboard::{SwitchboardArgs, SwitchboardCache, SwitchboardHandle, SwitchboardMsg};
use super::{Slot, ask};
use crate::config::Config;
use crate::error::CallError;
use crate::telemetry::{Metrics, Telemetry, kv};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    Auth,
    Dispatcher,
    Switchboard,
    Tracker,
}

impl ActorKind {
    pub const ALL: [ActorKind; 4] = [
        ActorKind::Auth,
        ActorKind::Dispatcher,
        ActorKind::Switchboard,
        ActorKind::Tracker,
    ];

    /// The `actor` attribute of metrics.
    pub(crate) fn metric_name(self) -> &'static str {
        match self {
            ActorKind::Auth => "auth",
            ActorKind::Dispatcher => "dispatcher",
            ActorKind::Switchboard => "switchboard",
            ActorKind::Tracker => "tracker",
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ActorKind::Auth => "auth",
            ActorKind::Dispatcher => "dispatcher",
            ActorKind::Switchboard => "switchboard cache",
            ActorKind::Tracker => "delivery tracker",
        }
    }
}

/// How the supervisor and its children are set up.
#[derive(Debug, Clone)]
pub struct SupervisorSettings {
    /// Where metrics are recorded (each server has its own; `/metrics` renders it).
    pub telemetry: Arc<Telemetry>,
    pub limits: DispatchLimits,
    pub switchboard_ttl: Duration,
    /// Where the state replicas share lives (memory, or Redis for several replicas).
    pub stores: crate::shared::Stores,
    /// When set, the actors connect to Redis at start and share their state there (this
    /// replaces `stores`).
    pub redis: Option<crate::shared::redis_store::RedisOptions>,
    pub tracker: TrackerLimits,
    /// More restarts than this within `restart_window` stop the process.
    pub max_restarts: usize,
    pub restart_window: Duration,
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        Self {
            telemetry: Arc::new(Telemetry::local()),
            limits: DispatchLimits::default(),
            switchboard_ttl: Duration::from_secs(60),
            stores: crate::shared::Stores::memory(),
            redis: None,
            tracker: TrackerLimits::default(),
            max_restarts: 10,
            restart_window: Duration::from_secs(30),
        }
    }
}

pub(crate) enum SupervisorMsg {
    /// Stops one child abruptly, as a crash would (operations and tests).
    Kill(ActorKind),
    Restarts(oneshot::Sender<u64>),
}

#[derive(Clone)]
struct Children {
    auth: (AuthArgs, Arc<Slot<AuthMsg>>),
    dispatcher: (DispatcherArgs, Arc<Slot<DispatchMsg>>),
    switchboard: (SwitchboardArgs, Arc<Slot<SwitchboardMsg>>),
    tracker: (TrackerArgs, Arc<Slot<TrackerMsg>>),
}

struct Supervisor;

struct SupervisorState {
    children: Children,
    settings: SupervisorSettings,
    metrics: Arc<Metrics>,
    running: HashMap<ActorId, (ActorKind, ActorCell)>,
    recent: VecDeque<Instant>,
    restarts: u64,
}

impl SupervisorState {
    async fn spawn(
        &mut self,
        kind: ActorKind,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let sup = myself.get_cell();
        let c = &self.children;
        let cell = match kind {
            ActorKind::Auth => {
                let (actor, _) =
                    Actor::spawn_linked(None, AuthActor, c.auth.0.clone(), sup).await?;
                c.auth.1.set(Some(actor.clone()));
                actor.get_cell()
            }
            ActorKind::Dispatcher => {
                let (actor, _) =
                    Actor::spawn_linked(None, Dispatcher, c.dispatcher.0.clone(), sup).await?;
                c.dispatcher.1.set(Some(actor.clone()));
                actor.get_cell()
            }
            ActorKind::Switchboard => {
                let (actor, _) =
                    Actor::spawn_linked(None, SwitchboardCache, c.switchboard.0.clone(), sup)
                        .await?;
                c.switchboard.1.set(Some(actor.clone()));
                actor.get_cell()
            }
            ActorKind::Tracker => {
                let (actor, _) =
                    Actor::spawn_linked(None, DeliveryTracker, c.tracker.0.clone(), sup).await?;
                c.tracker.1.set(Some(actor.clone()));
                actor.get_cell()
            }
        };
        self.running.insert(cell.get_id(), (kind, cell));
        Ok(())
    }

    fn clear_slot(&self, kind: ActorKind) {
        match kind {
            ActorKind::Auth => self.children.auth.1.set(None),
            ActorKind::Dispatcher => self.children.dispatcher.1.set(None),
            ActorKind::Switchboard => self.children.switchboard.1.set(None),
            ActorKind::Tracker => self.children.tracker.1.set(None),
        }
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = (Children, SupervisorSettings);

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        (children, settings): (Children, SupervisorSettings),
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState {
            children,
            metrics: settings.telemetry.metrics.clone(),
            settings,
            running: HashMap::new(),
            recent: VecDeque::new(),
            restarts: 0,
        };
        for kind in ActorKind::ALL {
            state.spawn(kind, &myself).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Kill(kind) => {
                if let Some((_, cell)) = state.running.values().find(|(k, _)| *k == kind) {
                    tracing::warn!(actor = kind.as_str(), "stopping actor on request");
                    cell.kill();
                }
            }
            SupervisorMsg::Restarts(reply) => {
                let _ = reply.send(state.restarts);
            }
        }
        Ok(())
    }

    // The default handler stops the supervisor when a child ends; here a child is restarted.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".to_owned()))
            }
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            _ => return Ok(()),
        };
        let Some((kind, _)) = state.running.remove(&cell.get_id()) else {
            return Ok(());
        };
        state.clear_slot(kind);
        let now = Instant::now();
        let window = state.settings.restart_window;
        while state
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > window)
        {
            state.recent.pop_front();
        }
        if state.recent.len() >= state.settings.max_restarts {
            let reason = format!(
                "restart storm: the {} actor ended ({why}) after {} restarts within {} s; stopping the server",
                kind.as_str(),
                state.recent.len(),
                window.as_secs()
            );
            tracing::error!("{reason}");
            myself.stop(Some(reason));
            return Ok(());
        }
        state.recent.push_back(now);
        state.restarts += 1;
        state
            .metrics
            .actor_restarts
            .add(1, &[kv("actor", kind.metric_name())]);
        tracing::warn!(actor = kind.as_str(), %why, "actor ended; restarting it");
        let spawned = state.spawn(kind, &myself).await;
        if let Err(e) = &spawned {
            tracing::error!(
                "cannot restart the {} actor ({e}); stopping the server",
                kind.as_str()
            );
        }
        spawned
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        for kind in ActorKind::ALL {
            state.clear_slot(kind);
        }
        // Each child finishes the message in hand and stops; the supervisor ends after them.
        for (_, cell) in state.running.values() {
            cell.stop(Some("shutting down".into()));
        }
        for (kind, cell) in state.running.values() {
            if cell.wait(Some(CHILD_STOP_WAIT)).await.is_err() {
                tracing::warn!(
                    "the {} actor did not stop within {} s",
                    kind.as_str(),
                    CHILD_STOP_WAIT.as_secs()
                );
            }
        }
        Ok(())
    }
}

/// The running actors and their handles.
pub struct Actors {
    /// Where the MCP layer records its metrics too.
    pub(crate) metrics: Arc<Metrics>,
    pub auth: AuthHandle,
    pub dispatcher: DispatcherHandle,
    pub switchboard: SwitchboardHandle,
    pub tracker: TrackerHandle,
    /// Where the state replicas share lives.
    pub stores: crate::shared::Stores,
    /// The idempotency records of keyed sends.
    pub keys: Arc<dyn crate::shared::IdempotencyStore>,
    /// The upstream budget the dispatcher spends (shared by every replica on Redis).
    pub budget: Arc<dyn crate::shared::RateBudget>,
    supervisor: ActorRef<SupervisorMsg>,
    /// True once the supervisor, and so every actor, has stopped.
    stopped: tokio::sync::watch::Receiver<bool>,
}

/// With `--redis-url`, the shared store on Redis in place of the in-memory one.
async fn connect_stores(
    config: &Config,
    settings: &mut SupervisorSettings,
) -> Result<(), CallError> {
    let metrics = settings.telemetry.metrics.clone();
    // Degraded only ever for want of Redis; 0 from the start, so the series exists.
    metrics
        .degraded
        .record(0, &[crate::telemetry::kv("reason", "redis")]);
    if let Some(options) = &settings.redis {
        settings.stores = crate::shared::Stores::redis(options, &config.app_id, metrics)
            .await
            // The message says where and what to check; a retry at start would not mend it.
            .map_err(|e| CallError::Misconfigured(e.0))?;
    }
    Ok(())
}

/// The delivery tracker's handle and what its actor starts with: the watch, the record and
/// the conversation index.
fn tracker(
    config: &Config,
    settings: &SupervisorSettings,
    slot: Arc<Slot<TrackerMsg>>,
) -> (TrackerHandle, TrackerArgs) {
    let watch = Arc::new(super::delivery::Watch::new(config.webhook_secret.is_some()));
    let store = settings.stores.delivery(settings.tracker.clone());
    let index = settings.stores.index(
        settings.tracker.conversations,
        settings.tracker.conversation_max_age,
    );
    let handle = TrackerHandle {
        slot,
        watch,
        store: store.clone(),
        index: index.clone(),
    };
    let args = TrackerArgs {
        metrics: settings.telemetry.metrics.clone(),
        store,
        index,
        claims: settings.stores.claims.clone(),
    };
    (handle, args)
}

/// How long shutdown waits for one actor to stop.
const CHILD_STOP_WAIT: Duration = Duration::from_secs(5);

impl Actors {
    /// Starts the supervisor and, under it, every actor.
    pub async fn start(
        config: &Config,
        mut settings: SupervisorSettings,
    ) -> Result<Self, CallError> {
        connect_stores(config, &mut settings).await?;
        let auth_slot = Slot::new("the auth actor");
        let dispatch_slot = Slot::new("the dispatcher");
        let switchboard_slot = Slot::new("the switchboard cache");
        let tracker_slot = Slot::new("the delivery tracker");
        let auth_args = AuthArgs::from_config(config, settings.telemetry.metrics.clone());
        let auth = AuthHandle {
            slot: auth_slot,
            published: auth_args.published.subscribe(),
        };
        let dispatcher = DispatcherHandle::new(dispatch_slot, &config.app_id, &settings.limits);
        let switchboard = SwitchboardHandle {
            slot: switchboard_slot,
            invalidation: settings.stores.invalidation.clone(),
        };
        // Subscribed now, so no notice published from here on is missed; heard until the
        // supervisor stops.
        let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(
            switchboard
                .clone()
                .listen(settings.stores.invalidation.subscribe(), stopped_rx.clone()),
        );
        let metrics = settings.telemetry.metrics.clone();
        let (tracker, tracker_args) = tracker(config, &settings, tracker_slot);
        let settings_metrics = metrics.clone();
        let stores = settings.stores.clone();
        // A holder's lease outlasts one upstream attempt (bounded by the call's deadline).
        let keys = stores.idempotency(
            crate::shared::KEY_CAPACITY,
            crate::shared::KEY_RETENTION,
            settings.limits.deadline + Duration::from_secs(5),
        );
        let budget = settings.stores.budget(crate::shared::BudgetShape {
            rate: settings.limits.rate,
            burst: settings.limits.burst,
            min_rate_share: settings.limits.min_rate_share,
        });
        let children = Children {
            auth: (auth_args, auth.slot.clone()),
            dispatcher: (
                DispatcherArgs {
                    budget: budget.clone(),
                    limits: settings.limits.clone(),
                    transport: Transport::new(&config.api_url)?,
                    auth: auth.clone(),
                    me: dispatcher.clone(),
                    metrics: metrics.clone(),
                },
                dispatcher.slot.clone(),
            ),
            switchboard: (
                SwitchboardArgs {
                    ttl: settings.switchboard_ttl,
                    dispatcher: dispatcher.clone(),
                    metrics: metrics.clone(),
                },
                switchboard.slot.clone(),
            ),
            tracker: (tracker_args, tracker.slot.clone()),
        };
        let (supervisor, join) = Actor::spawn(None, Supervisor, (children, settings))
            .await
            .map_err(|e| CallError::Internal(format!("cannot start the actors: {e}")))?;
        Ok(Self {
            metrics: settings_metrics,
            auth,
            dispatcher,
            switchboard,
            tracker,
            stores,
            keys,
            budget,
            supervisor,
            stopped: {
                tokio::spawn(async move {
                    let _ = join.await;
                    let _ = stopped_tx.send(true);
                });
                stopped_rx
            },
        })
    }

    /// Stops one actor abruptly; the supervisor restarts it.
    pub fn kill(&self, kind: ActorKind) {
        let _ = self.supervisor.send_message(SupervisorMsg::Kill(kind));
    }

    /// Restarts so far.
    pub async fn restarts(&self) -> Result<u64, CallError> {
        let slot = Slot::new("the supervisor");
        slot.set(Some(self.supervisor.clone()));
        ask(
            &slot,
            Instant::now() + Duration::from_secs(5),
            SupervisorMsg::Restarts,
        )
        .await
    }

    /// True when `kind` has a running incarnation.
    pub(crate) fn is_up(&self, kind: ActorKind) -> bool {
        match kind {
            ActorKind::Auth => self.auth.slot.current().is_some(),
            ActorKind::Dispatcher => self.dispatcher.slot.current().is_some(),
            ActorKind::Switchboard => self.switchboard.slot.current().is_some(),
            ActorKind::Tracker => self.tracker.slot.current().is_some(),
        }
    }

    /// True while the supervisor runs (it stops only on shutdown or a restart storm).
    pub fn is_running(&self) -> bool {
        matches!(
            self.supervisor.get_status(),
            ractor::ActorStatus::Running | ractor::ActorStatus::Starting
        )
    }

    /// Waits until the supervisor and every actor have stopped (a restart storm, or
    /// [`Actors::shutdown`]). Any number of callers may wait, at any time.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stopped.clone();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    pub async fn shutdown(&self) {
        self.supervisor.stop(Some("shutting down".into()));
        self.stopped().await;
    }
}
