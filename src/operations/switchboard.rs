//! Switchboard work that spans calls: who controls a conversation (the conversation and the
//! cached routing picture together), and control steps checked against the picture before the
//! control call, so an invalid target is refused with nothing written upstream.

use std::sync::Arc;

use crate::actors::switchboard::{Control, ControlKind, Picture, SwitchboardStatus};
use crate::call::Call;
use crate::error::{CallError, TargetInfo};
use crate::shared::{Change, ConversationNote};
use crate::sunco::endpoints::Endpoint;
use crate::sunco::wire::{
    ControlBody, ControlTargetBody, Conversation, ConversationResponse, Metadata,
};

use super::Operations;

/// A control target that resolved to exactly one switchboard integration. Only
/// `Operations::check_target` makes one; the control endpoints take its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidTarget {
    id: String,
    pub(crate) name: String,
}

impl ValidTarget {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

impl Operations {
    /// `check` on the cached routing picture; if it fails there, once more on a freshly loaded
    /// one (the cached picture may be stale). The picture it was last checked on, and its
    /// verdict.
    pub(crate) async fn on_fresh_picture<T, E>(
        &self,
        check: impl Fn(&Picture) -> Result<T, E>,
    ) -> Result<(Arc<Picture>, Result<T, E>), CallError> {
        let picture = self.actors.switchboard.picture(false).await?;
        if let Ok(v) = check(&picture) {
            return Ok((picture, Ok(v)));
        }
        let picture = self.actors.switchboard.picture(true).await?;
        let verdict = check(&picture);
        Ok((picture, verdict))
    }

    /// `GetConversation`; who controls it goes to the index too (the freshest word on it).
    async fn conversation(
        &self,
        call: &Call,
        conversation_id: &str,
    ) -> Result<Conversation, CallError> {
        let asked = crate::sunco::ids::now_unix_ms();
        let one: ConversationResponse = self
            .actors
            .dispatcher
            .call_json(
                call,
                &Endpoint::GetConversation {
                    conversation_id: conversation_id.to_owned(),
                },
            )
            .await?;
        let c = &one.conversation;
        self.actors
            .tracker
            .note(ConversationNote {
                conversation_id: c.id.clone(),
                // Dated when asked: a webhook event after that still wins.
                at: asked,
                change: Change::ControlSeen {
                    active: c
                        .active_switchboard_integration
                        .as_ref()
                        .map(|a| a.id.clone()),
                    pending: c
                        .pending_switchboard_integration
                        .as_ref()
                        .map(|a| a.id.clone()),
                },
            })
            .await;
        Ok(one.conversation)
    }

    /// Who controls `conversation_id` now, who is pending, and where `next` leads.
    pub(crate) async fn switchboard_status(
        &self,
        call: &Call,
        conversation_id: &str,
    ) -> Result<SwitchboardStatus, CallError> {
        let conversation = self.conversation(call, conversation_id).await?;
        let mut picture = self.actors.switchboard.picture(false).await?;
        let active = conversation.active_switchboard_integration.clone();
        if active
            .as_ref()
            .is_some_and(|a| picture.by_id(&a.id).is_none())
        {
            picture = self.actors.switchboard.picture(true).await?;
        }
        let next = active
            .as_ref()
            .and_then(|a| picture.by_id(&a.id))
            .and_then(|a| a.next_switchboard_integration_id.as_deref())
            .and_then(|n| picture.by_id(n))
            .map(|s| TargetInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                integration_type: s.integration_type.clone(),
            });
        Ok(SwitchboardStatus {
            conversation_id: conversation.id,
            switchboard_enabled: picture.switchboard.as_ref().is_some_and(|s| s.enabled),
            switchboard_id: picture.switchboard.as_ref().map(|s| s.id.clone()),
            active,
            pending: conversation.pending_switchboard_integration,
            next,
            targets: picture.targets(),
        })
    }

    /// Checks a control step against the switchboard and, if it holds, sends it. Nothing is
    /// written upstream when the check fails. With `claim` (the caller's claim on the
    /// conversation), the claim ends as handed over once control has moved. Returns the
    /// conversation's status afterwards.
    pub(crate) async fn control(
        &self,
        call: &Call,
        conversation_id: &str,
        control: Control,
        metadata: Option<Metadata>,
        claim: Option<&str>,
    ) -> Result<SwitchboardStatus, CallError> {
        if let Some(token) = claim {
            self.token_for(token, conversation_id)?;
        }
        let conversation = self.conversation(call, conversation_id).await?;
        let conversation_id = conversation.id.clone();
        let endpoint = match &control {
            Control::Pass(target) | Control::Offer(target) => {
                let kind = if matches!(control, Control::Pass(_)) {
                    ControlKind::Pass
                } else {
                    ControlKind::Offer
                };
                let valid = self.check_target(&conversation, target, kind).await?;
                let body = ControlTargetBody {
                    switchboard_integration: valid.id().to_owned(),
                    metadata,
                };
                if kind == ControlKind::Pass {
                    Endpoint::PassControl {
                        conversation_id,
                        body,
                    }
                } else {
                    Endpoint::OfferControl {
                        conversation_id,
                        body,
                    }
                }
            }
            Control::Accept | Control::Release => {
                let (picture, usable) = self.on_fresh_picture(|p| p.usable().map(|_| ())).await?;
                if let Err(reason) = usable {
                    return Err(CallError::InvalidTarget {
                        reason,
                        valid: picture.targets(),
                    });
                }
                let body = ControlBody { metadata };
                if control == Control::Accept {
                    if conversation.pending_switchboard_integration.is_none() {
                        return Err(CallError::InvalidTarget {
                            reason: "no switchboard integration has been offered control of this conversation, so there is nothing to accept; use offer_control first".into(),
                            valid: picture.targets(),
                        });
                    }
                    Endpoint::AcceptControl {
                        conversation_id,
                        body,
                    }
                } else {
                    Endpoint::ReleaseControl {
                        conversation_id,
                        body,
                    }
                }
            }
        };
        let sent_at = crate::sunco::ids::now_unix_ms();
        match self.actors.dispatcher.call(call, &endpoint).await {
            Ok(_) => {}
            Err(e) => {
                // The switchboard may have changed under us: the next check loads it afresh.
                if matches!(e.upstream_status(), Some(400 | 403 | 404 | 409)) {
                    self.actors.switchboard.invalidate().await;
                }
                return Err(e);
            }
        }
        let status = self.switchboard_status(call, &conversation.id).await?;
        self.actors
            .tracker
            .note(ConversationNote {
                conversation_id: status.conversation_id.clone(),
                at: sent_at,
                change: Change::Control {
                    active: status.active.as_ref().map(|a| a.id.clone()),
                    pending: status.pending.as_ref().map(|p| p.id.clone()),
                },
            })
            .await;
        if let Some(token) = claim
            && let Err(e) = self
                .release_claim(call, token, crate::shared::Release::HandedOver)
                .await
        {
            // Control moved; the claim had ended already (or the switchboard event ended it).
            tracing::info!("a claim handed over with control had ended: {e}");
        }
        Ok(status)
    }

    /// Checks that `target` resolves to exactly one switchboard integration for a control call
    /// on `conversation`, refreshing the picture once before rejecting it.
    async fn check_target(
        &self,
        conversation: &Conversation,
        target: &str,
        kind: ControlKind,
    ) -> Result<ValidTarget, CallError> {
        let active = conversation
            .active_switchboard_integration
            .as_ref()
            .map(|a| a.id.as_str());
        let mut picture = self.actors.switchboard.picture(false).await?;
        let mut refreshed = false;
        loop {
            // An active integration missing from the cached picture also means it is stale.
            let stale_active = active.is_some_and(|a| picture.by_id(a).is_none());
            let outcome = if stale_active {
                Err("the cached switchboard does not know the active integration".to_owned())
            } else {
                picture.resolve(target, active).map(|s| ValidTarget {
                    id: s.id.clone(),
                    name: s.name.clone(),
                })
            };
            match outcome {
                Ok(valid) if kind == ControlKind::Offer && Some(valid.id()) == active => {
                    return Err(CallError::InvalidTarget {
                        reason: format!(
                            "{:?} is already in control of the conversation; offer control to another integration",
                            valid.name
                        ),
                        valid: picture.targets(),
                    });
                }
                Ok(valid) => return Ok(valid),
                Err(reason) if refreshed => {
                    return Err(CallError::InvalidTarget {
                        reason,
                        valid: picture.targets(),
                    });
                }
                Err(_) => {
                    picture = self.actors.switchboard.picture(true).await?;
                    refreshed = true;
                }
            }
        }
    }
}

/// Where the send guard learnt who controls a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlSource {
    /// The conversation index, which the webhooks keep current.
    Index,
    /// `GetConversation`.
    Api,
}

impl Operations {
    /// The switchboard integration `call` speaks for (id, name or integrationType): the one its
    /// token or the server names, else the switchboard's default integration (the bot, in the
    /// usual set-up), so a bot never talks over a human by default. `None`: no guard
    /// (`--no-send-guard`, or an app without a usable switchboard and nothing named).
    pub(crate) async fn speaks_for(&self, call: &Call) -> Result<Option<String>, CallError> {
        let rules = call.rules();
        if let Some(named) = &rules.switchboard_integration {
            return Ok(Some(named.clone()));
        }
        if !rules.default_guard {
            return Ok(None);
        }
        let picture = self.actors.switchboard.picture(false).await?;
        Ok(picture
            .usable()
            .ok()
            .and_then(|s| s.default_switchboard_integration_id.clone()))
    }

    /// The id of the switchboard integration `mine` (id, name or integrationType) a caller speaks
    /// for, with the picture it was resolved on. One the switchboard does not have is a setting
    /// no retry can mend: [`CallError::InvalidTarget`] naming the valid ones, nothing done.
    pub(crate) async fn my_integration_id(
        &self,
        mine: &str,
    ) -> Result<(Arc<Picture>, String), CallError> {
        let (picture, mine_id) = self
            .on_fresh_picture(|p| p.resolve(mine, None).map(|s| s.id.clone()))
            .await?;
        match mine_id {
            Ok(id) => Ok((picture, id)),
            Err(why) => Err(CallError::InvalidTarget {
                reason: format!(
                    "this caller speaks for the switchboard integration {mine:?}, which does not resolve ({why}), so nothing was done; the operator must fix --switchboard-integration or the token's switchboard_integration"
                ),
                valid: picture.targets(),
            }),
        }
    }

    /// The send guard: `Ok` when the switchboard integration `mine` (id, name or
    /// integrationType) controls `conversation_id`, else [`CallError::NotInControl`] naming who
    /// does. Who controls it comes from the index while webhooks arrive and the webhook check
    /// found every trigger subscribed, else from `GetConversation`; when neither can tell,
    /// [`CallError::ControlUnknown`] (retryable; a failure with a class of its own keeps it). A
    /// `mine` the switchboard does not have is [`CallError::InvalidTarget`]: a setting to fix.
    pub(crate) async fn check_control(
        &self,
        call: &Call,
        conversation_id: &str,
        mine: &str,
    ) -> Result<ControlSource, CallError> {
        let unknown = |reason: String| CallError::ControlUnknown {
            conversation_id: conversation_id.to_owned(),
            reason,
        };
        let (picture, my_id) = self.my_integration_id(mine).await?;
        // The index is current only while events arrive and the upstream's webhook is known to
        // send every control event; otherwise the API is asked.
        let tracker = &self.actors.tracker;
        let tracking = tracker.tracking().await;
        let current = tracking.status == crate::actors::delivery::TrackingStatus::On
            && tracking.webhook.status == crate::actors::delivery::WebhookCheckStatus::Configured;
        let indexed = if current {
            tracker
                .conversation(conversation_id)
                .await
                .ok()
                .flatten()
                .filter(|e| e.control_at != i64::MIN)
        } else {
            None
        };
        let (active, source) = match indexed {
            Some(e) => (e.active_switchboard_integration, ControlSource::Index),
            None => match self.conversation(call, conversation_id).await {
                Ok(c) => (
                    c.active_switchboard_integration.map(|a| a.id),
                    ControlSource::Api,
                ),
                // Only a failure that says nothing of its own becomes control_unknown; the rest
                // (a 404, a 429 with its wait, refused credentials) keep their class.
                Err(
                    e @ (CallError::Unreachable { .. }
                    | CallError::Unavailable { .. }
                    | CallError::Internal(_)),
                ) => {
                    return Err(unknown(format!(
                        "the webhooks do not keep the index current and GetConversation failed: {e}"
                    )));
                }
                Err(e) => return Err(e),
            },
        };
        if active.as_deref() == Some(my_id.as_str()) {
            return Ok(source);
        }
        let active = active.map(|id| {
            picture
                .by_id(&id)
                .map(|s| TargetInfo {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    integration_type: s.integration_type.clone(),
                })
                .unwrap_or(TargetInfo {
                    name: id.clone(),
                    integration_type: "unknown".into(),
                    id,
                })
        });
        Err(CallError::NotInControl {
            conversation_id: conversation_id.to_owned(),
            caller: mine.to_owned(),
            active,
        })
    }
}

/// Warns of every switchboard integration `access` names (the server's, a token's, an OAuth
/// client's) that the switchboard does not have: such a caller's business messages would be
/// refused as `invalid_target` at its first send. Answers how many it warned of (none when
/// the switchboard cannot be read: nothing is said then).
pub(crate) async fn warn_of_unknown_integrations(
    actors: &crate::actors::Actors,
    access: &crate::access::AccessPolicy,
) -> usize {
    let named = access.named_integrations();
    if named.is_empty() {
        return 0;
    }
    let Ok(picture) = actors.switchboard.picture(false).await else {
        return 0;
    };
    let valid: Vec<String> = picture.targets().iter().map(|t| t.name.clone()).collect();
    let mut warned = 0;
    for (who, mine) in named {
        if let Err(why) = picture.resolve(&mine, None) {
            warned += 1;
            tracing::warn!(
                "{who} speaks for the switchboard integration {mine:?}, which does not resolve ({why}); its business messages will be refused as invalid_target: name one of {} (id, name or integrationType)",
                valid.join(", ")
            );
        }
    }
    warned
}
