//! The switchboard cache: the app's routing picture (its switchboard and switchboard
//! integrations), kept in a moka cache with a TTL, and the check every control call passes before
//! anything is written upstream.
//!
//! The actor owns the cache; loads run in spawned tasks through moka's `try_get_with`, so
//! concurrent misses share one load and the actor never waits on the upstream. A target that does
//! not resolve on the cached picture triggers one refresh before it is rejected (the picture may be
//! stale); an upstream switchboard error makes the caller invalidate the entry.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use super::dispatcher::DispatcherHandle;
use super::{Slot, ask};
use crate::call::Call;
use crate::error::{CallError, TargetInfo};
use crate::sunco::endpoints::Endpoint;
use crate::sunco::wire::{
    Switchboard, SwitchboardIntegration, SwitchboardIntegrationListResponse,
    SwitchboardIntegrationRef, SwitchboardListResponse,
};
use crate::telemetry::{Metrics, kv};

/// The app's routing picture. `switchboard` is `None` when the app has none.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Picture {
    pub switchboard: Option<Switchboard>,
    pub switchboard_integrations: Vec<SwitchboardIntegration>,
}

impl Picture {
    pub(crate) fn targets(&self) -> Vec<TargetInfo> {
        self.switchboard_integrations
            .iter()
            .map(|s| TargetInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                integration_type: s.integration_type.clone(),
            })
            .collect()
    }

    pub(crate) fn by_id(&self, id: &str) -> Option<&SwitchboardIntegration> {
        self.switchboard_integrations.iter().find(|s| s.id == id)
    }

    /// The switchboard, if control calls can work at all.
    pub(crate) fn usable(&self) -> Result<&Switchboard, String> {
        match &self.switchboard {
            None => Err("the app has no switchboard, so control cannot change hands".into()),
            Some(s) if !s.enabled => {
                Err("the app's switchboard is disabled, so control cannot change hands".into())
            }
            Some(s) => Ok(s),
        }
    }

    /// Resolves a target the way the API does: by id, then name, then integrationType; `next`
    /// follows the active integration's `nextSwitchboardIntegrationId`.
    pub fn resolve(
        &self,
        target: &str,
        active: Option<&str>,
    ) -> Result<&SwitchboardIntegration, String> {
        let switchboard = self.usable()?;
        if target == "next" {
            let active = active
                .or(switchboard.default_switchboard_integration_id.as_deref())
                .ok_or("\"next\" needs an active switchboard integration and there is none")?;
            let current = self
                .by_id(active)
                .ok_or("the active switchboard integration is not in the switchboard")?;
            let next = current.next_switchboard_integration_id.as_deref().ok_or(format!(
                "\"next\" does not resolve: the active integration {:?} has no nextSwitchboardIntegrationId",
                current.name
            ))?;
            return self
                .by_id(next)
                .ok_or_else(|| "the next switchboard integration no longer exists".into());
        }
        if let Some(s) = self.by_id(target) {
            return Ok(s);
        }
        let named: Vec<_> = self
            .switchboard_integrations
            .iter()
            .filter(|s| s.name == target)
            .collect();
        if let [one] = named.as_slice() {
            return Ok(one);
        }
        let typed: Vec<_> = self
            .switchboard_integrations
            .iter()
            .filter(|s| s.integration_type == target)
            .collect();
        match typed.as_slice() {
            [one] => Ok(one),
            [] => Err(format!(
                "no switchboard integration has the id, name or integrationType {target:?}"
            )),
            many => Err(format!(
                "{target:?} matches {} switchboard integrations by integrationType; name one by id or name",
                many.len()
            )),
        }
    }
}

pub(crate) enum SwitchboardMsg {
    /// The picture, loading it if absent (or if `refresh`).
    Picture {
        refresh: bool,
        reply: oneshot::Sender<Result<Arc<Picture>, CallError>>,
        /// The caller's span, parent of a load's span.
        span: tracing::Span,
    },
    Invalidate,
    /// Cache loads started by this incarnation (for tests and metrics).
    Loads(oneshot::Sender<u64>),
}

#[derive(Clone)]
pub(crate) struct SwitchboardArgs {
    pub(crate) ttl: Duration,
    pub(crate) dispatcher: DispatcherHandle,
    pub(crate) metrics: Arc<Metrics>,
}

pub(crate) struct SwitchboardCache;

pub(crate) struct SwitchboardState {
    cache: Cache<(), Arc<Picture>>,
    dispatcher: DispatcherHandle,
    metrics: Arc<Metrics>,
    loads: Arc<std::sync::atomic::AtomicU64>,
}

impl Actor for SwitchboardCache {
    type Msg = SwitchboardMsg;
    type State = SwitchboardState;
    type Arguments = SwitchboardArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SwitchboardMsg>,
        args: SwitchboardArgs,
    ) -> Result<SwitchboardState, ActorProcessingErr> {
        Ok(SwitchboardState {
            cache: Cache::builder()
                .max_capacity(1)
                .time_to_live(args.ttl)
                .build(),
            dispatcher: args.dispatcher,
            metrics: args.metrics,
            loads: Default::default(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SwitchboardMsg>,
        msg: SwitchboardMsg,
        state: &mut SwitchboardState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SwitchboardMsg::Picture {
                refresh,
                reply,
                span: caller,
            } => {
                if refresh {
                    state.cache.invalidate(&()).await;
                }
                let hit = state.cache.contains_key(&());
                state
                    .metrics
                    .cache_lookups
                    .add(1, &[kv("result", if hit { "hit" } else { "miss" })]);
                let cache = state.cache.clone();
                let dispatcher = state.dispatcher.clone();
                let loads = state.loads.clone();
                let metrics = state.metrics.clone();
                tokio::spawn(async move {
                    let result = cache
                        .try_get_with((), async move {
                            loads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let span = tracing::info_span!(
                                parent: &caller,
                                "switchboard.load",
                                otel.name = "switchboard cache load"
                            );
                            let loaded = load(&dispatcher).instrument(span).await;
                            let outcome = if loaded.is_ok() { "ok" } else { "error" };
                            metrics.cache_loads.add(1, &[kv("outcome", outcome)]);
                            loaded.map(Arc::new)
                        })
                        .await
                        .map_err(|e| (*e).clone());
                    let _ = reply.send(result);
                });
            }
            SwitchboardMsg::Invalidate => state.cache.invalidate(&()).await,
            SwitchboardMsg::Loads(reply) => {
                let _ = reply.send(state.loads.load(std::sync::atomic::Ordering::Relaxed));
            }
        }
        Ok(())
    }
}

async fn load(dispatcher: &DispatcherHandle) -> Result<Picture, CallError> {
    // A shared cache load: whichever call asked first, it serves every caller, so it runs as
    // the server's own work (a read, never cancelled by one caller).
    let call = Call::internal();
    let list: SwitchboardListResponse = dispatcher
        .call_json(&call, &Endpoint::ListSwitchboards)
        .await?;
    let Some(switchboard) = list.switchboards.into_iter().next() else {
        return Ok(Picture {
            switchboard: None,
            switchboard_integrations: vec![],
        });
    };
    let integrations: SwitchboardIntegrationListResponse = dispatcher
        .call_json(
            &call,
            &Endpoint::ListSwitchboardIntegrations {
                switchboard_id: switchboard.id.clone(),
            },
        )
        .await?;
    Ok(Picture {
        switchboard: Some(switchboard),
        switchboard_integrations: integrations.switchboard_integrations,
    })
}

/// What a control call is about to do, for the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlKind {
    Pass,
    Offer,
}

/// One step of the switchboard protocol.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Control {
    Pass(String),
    Offer(String),
    Accept,
    Release,
}

impl Control {
    /// The API's name for the step.
    pub(crate) fn action(&self) -> ControlAction {
        match self {
            Control::Pass(_) => ControlAction::PassControl,
            Control::Offer(_) => ControlAction::OfferControl,
            Control::Accept => ControlAction::AcceptControl,
            Control::Release => ControlAction::ReleaseControl,
        }
    }
}

/// A switchboard control action, named as the API's endpoint (each name ends in `Control`, as
/// the API's do, and an agent reads them as they are serialized).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum ControlAction {
    PassControl,
    OfferControl,
    AcceptControl,
    ReleaseControl,
}

/// Who controls a conversation, composed from the conversation and the cached switchboard.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SwitchboardStatus {
    pub(crate) conversation_id: String,
    /// False when the app has no switchboard or it is disabled: control calls will be refused.
    pub(crate) switchboard_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) switchboard_id: Option<String>,
    /// The integration in control now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) active: Option<SwitchboardIntegrationRef>,
    /// The integration control was offered to and that has not accepted yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<SwitchboardIntegrationRef>,
    /// Where `"next"` leads from the active integration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<TargetInfo>,
    /// Every switchboard integration a control call may name.
    pub(crate) targets: Vec<TargetInfo>,
}

/// How the rest of the server reads the routing picture and checks control targets.
#[derive(Clone)]
pub struct SwitchboardHandle {
    pub(crate) slot: Arc<Slot<SwitchboardMsg>>,
    /// Where "the switchboard changed" is published, for every cache (every replica's).
    pub(crate) invalidation: Arc<dyn crate::shared::Invalidation>,
}

impl SwitchboardHandle {
    fn until() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    pub(crate) async fn picture(&self, refresh: bool) -> Result<Arc<Picture>, CallError> {
        let span = tracing::Span::current();
        ask(&self.slot, Self::until(), |reply| SwitchboardMsg::Picture {
            refresh,
            reply,
            span: span.clone(),
        })
        .await?
    }

    /// Drops the cached picture everywhere (after the upstream refused a control call): this
    /// cache at once, so the next check here loads afresh; the others through
    /// [`crate::shared::Invalidation`] (the TTL is their backstop should the notice not go out).
    pub async fn invalidate(&self) {
        self.drop_picture().await;
        if let Err(e) = self.invalidation.publish().await {
            tracing::warn!("cannot tell the other caches that the switchboard changed: {e}");
        }
    }

    /// Drops this cache's picture.
    pub(crate) async fn drop_picture(&self) {
        let _ = self
            .slot
            .send(
                SwitchboardMsg::Invalidate,
                Instant::now() + Duration::from_secs(5),
            )
            .await;
    }

    /// Drops the picture whenever a notice comes, or notices may have been lost; until the
    /// notices end or `stopped` turns true.
    pub(crate) async fn listen(
        self,
        mut notices: crate::shared::Subscription,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                heard = notices.next() => match heard {
                    crate::shared::Heard::Changed | crate::shared::Heard::Lost => {
                        self.drop_picture().await
                    }
                    crate::shared::Heard::Closed => return,
                },
                _ = async { stopped.wait_for(|s| *s).await.is_ok() } => return,
            }
        }
    }

    pub async fn loads(&self) -> Result<u64, CallError> {
        ask(&self.slot, Self::until(), SwitchboardMsg::Loads).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sbi(id: &str, name: &str, kind: &str, next: Option<&str>) -> SwitchboardIntegration {
        SwitchboardIntegration {
            id: id.into(),
            name: name.into(),
            integration_id: format!("int-{id}"),
            integration_type: kind.into(),
            deliver_standby_events: false,
            next_switchboard_integration_id: next.map(str::to_owned),
            message_history_count: None,
        }
    }

    fn picture(enabled: bool) -> Picture {
        Picture {
            switchboard: Some(Switchboard {
                id: "sb".into(),
                enabled,
                default_switchboard_integration_id: Some("a".into()),
            }),
            switchboard_integrations: vec![
                sbi("a", "bot", "custom", Some("b")),
                sbi("b", "agents", "zd:agentWorkspace", None),
                sbi("c", "other-bot", "custom", None),
            ],
        }
    }

    #[test]
    fn resolves_by_id_then_name_then_unique_type() {
        let p = picture(true);
        assert_eq!(p.resolve("b", None).unwrap().id, "b");
        assert_eq!(p.resolve("agents", None).unwrap().id, "b");
        assert_eq!(p.resolve("zd:agentWorkspace", None).unwrap().id, "b");
        let err = p.resolve("custom", None).unwrap_err();
        assert!(err.contains("matches 2"), "{err}");
        assert!(
            p.resolve("humans", None)
                .unwrap_err()
                .contains("\"humans\"")
        );
    }

    #[test]
    fn next_follows_the_active_integration() {
        let p = picture(true);
        assert_eq!(p.resolve("next", Some("a")).unwrap().id, "b");
        assert!(p.resolve("next", Some("b")).unwrap_err().contains("agents"));
        // Without an active integration the default one is where `next` starts.
        assert_eq!(p.resolve("next", None).unwrap().id, "b");
    }

    #[test]
    fn a_disabled_or_missing_switchboard_refuses_every_target() {
        assert!(
            picture(false)
                .resolve("b", None)
                .unwrap_err()
                .contains("disabled")
        );
        let none = Picture {
            switchboard: None,
            switchboard_integrations: vec![],
        };
        assert!(
            none.resolve("b", None)
                .unwrap_err()
                .contains("no switchboard")
        );
    }
}
