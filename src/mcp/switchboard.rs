//! The switchboard tools: the routing picture, who controls a conversation, and the four control steps, each checked before anything is written.

use rmcp::handler::server::wrapper::Json;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::Parameters;
use super::entry::ToolError;
use super::types::{ConversationArgs, NoArgs};
use super::{ZendeskMcp, content, id_arg, record_id};
use crate::actors::switchboard::{Control, SwitchboardStatus};
use crate::call::Call;
use crate::sunco::wire::{Metadata, Switchboard, SwitchboardIntegration};

#[tool_router(router = switchboard_tools, vis = "pub(super)")]
impl ZendeskMcp {
    #[tool(
        description = "The app's switchboard and every switchboard integration it routes between (bots, agent workspaces): names, types, which is the default, and each one's `next`. One call gives the routing picture; it also refreshes the server's cache.",
        annotations(
            title = "List switchboards",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn list_switchboards(
        &self,
        Parameters(_): Parameters<NoArgs>,
    ) -> Result<Json<SwitchboardList>, ToolError> {
        let picture = self.ops.routing(true).await?;
        let switchboards = picture
            .switchboard
            .clone()
            .map(|s| SwitchboardView {
                switchboard: s,
                switchboard_integrations: picture.switchboard_integrations.clone(),
            })
            .into_iter()
            .collect();
        Ok(Json(SwitchboardList { switchboards }))
    }

    #[tool(
        description = "Who controls a conversation now: the active switchboard integration, the pending one (offered control), where `next` leads, whether the switchboard is enabled, and every valid target. Check it before pass_control.",
        annotations(
            title = "Get switchboard status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_switchboard_status(
        &self,
        call: Call,
        Parameters(a): Parameters<ConversationArgs>,
    ) -> Result<Json<crate::actors::switchboard::SwitchboardStatus>, ToolError> {
        let conversation_id = record_id("conversationId", &a.conversation_id)?;
        Ok(Json(
            self.ops.switchboard_status(&call, &conversation_id).await?,
        ))
    }

    #[tool(
        description = "Hand a conversation to another switchboard integration, e.g. from the bot to human agents. The target (switchboardIntegration) is an id, a name, an integrationType held by exactly one integration, or `next`. It is checked first: an invalid target is refused with the list of valid targets and nothing changes. Give a summary so a human agent starts with the context. Returns who controls the conversation afterwards.",
        annotations(
            title = "Pass control",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn pass_control(
        &self,
        call: Call,
        Parameters(a): Parameters<ControlTargetArgs>,
    ) -> Result<Json<ControlOut>, ToolError> {
        let target = id_arg("switchboardIntegration", &a.switchboard_integration)?;
        let metadata = content::with_summary(a.metadata, a.summary)?;
        let to = Control::Pass(target);
        (self.control(&call, to, &a.conversation_id, metadata, a.claim.as_deref())).await
    }

    #[tool(
        description = "Offer control of a conversation to another switchboard integration, which takes it with accept_control. The target is checked like pass_control's and must not be the integration already in control.",
        annotations(
            title = "Offer control",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn offer_control(
        &self,
        call: Call,
        Parameters(a): Parameters<ControlTargetArgs>,
    ) -> Result<Json<ControlOut>, ToolError> {
        let target = id_arg("switchboardIntegration", &a.switchboard_integration)?;
        let metadata = content::with_summary(a.metadata, a.summary)?;
        let to = Control::Offer(target);
        (self.control(&call, to, &a.conversation_id, metadata, a.claim.as_deref())).await
    }

    #[tool(
        description = "Accept a pending offer of control: the pending switchboard integration becomes active. Fails when nothing is pending (see get_switchboard_status).",
        annotations(
            title = "Accept control",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn accept_control(
        &self,
        call: Call,
        Parameters(a): Parameters<ControlArgs>,
    ) -> Result<Json<ControlOut>, ToolError> {
        self.control(&call, Control::Accept, &a.conversation_id, a.metadata, None)
            .await
    }

    #[tool(
        description = "Release control of a conversation: the active switchboard integration gives it up and the conversation returns to the switchboard's default integration.",
        annotations(
            title = "Release control",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn release_control(
        &self,
        call: Call,
        Parameters(a): Parameters<ControlArgs>,
    ) -> Result<Json<ControlOut>, ToolError> {
        self.control(
            &call,
            Control::Release,
            &a.conversation_id,
            a.metadata,
            None,
        )
        .await
    }
}

impl ZendeskMcp {
    /// A control step: its arguments checked, then checked against the switchboard and sent.
    async fn control(
        &self,
        call: &Call,
        control: Control,
        conversation_id: &str,
        metadata: Option<crate::sunco::wire::Metadata>,
        claim: Option<&str>,
    ) -> Result<Json<ControlOut>, ToolError> {
        let conversation_id = record_id("conversationId", conversation_id)?;
        content::check_metadata("metadata", &metadata)?;
        let action = control.action();
        let status = (self.ops)
            .control(call, &conversation_id, control, metadata, claim)
            .await?;
        Ok(Json(ControlOut { action, status }))
    }
}

// The arguments and results of these tools: the `///` docs become the schemas an LLM reads.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ControlTargetArgs {
    /// The conversation.
    pub(crate) conversation_id: String,
    /// The switchboard integration to hand the conversation to: its id, its name (e.g.
    /// `zd-agentWorkspace`), its integrationType (e.g. `zd:agentWorkspace`) when only one has
    /// it, or `next` to follow the active integration's next one. get_switchboard_status lists
    /// the valid targets.
    pub(crate) switchboard_integration: String,
    /// Flat key/value data handed to the receiving integration.
    #[serde(default)]
    pub(crate) metadata: Option<Metadata>,
    /// What the receiving side (a human agent) should know: who the customer is, what they
    /// asked, what was tried. Passed in the control call's metadata as `mcp.summary`; with
    /// `metadata`, at most 4 KB as JSON.
    #[serde(default)]
    pub(crate) summary: Option<String>,
    /// Your claim on the conversation (claim_conversation): it ends as handed over.
    #[serde(default)]
    pub(crate) claim: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ControlArgs {
    /// The conversation.
    pub(crate) conversation_id: String,
    /// Flat key/value data handed along with the control change.
    #[serde(default)]
    pub(crate) metadata: Option<Metadata>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SwitchboardView {
    #[serde(flatten)]
    pub(crate) switchboard: Switchboard,
    /// The bots, agent workspaces and other integrations the switchboard routes between.
    pub(crate) switchboard_integrations: Vec<SwitchboardIntegration>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SwitchboardList {
    /// The app's switchboard (an app has at most one); empty when it has none.
    pub(crate) switchboards: Vec<SwitchboardView>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ControlOut {
    /// What was done.
    pub(crate) action: crate::actors::switchboard::ControlAction,
    /// Who controls the conversation now.
    pub(crate) status: SwitchboardStatus,
}
