//! What a client can attach as context: prompts (workflows an agent follows) and resources
//! (the routing picture and the channels, read live). Each is offered only to callers whose
//! profile grants the tools it needs or reads through.

use rmcp::model::{
    GetPromptResult, Prompt, PromptArgument, PromptMessage, ReadResourceResult, Resource,
    ResourceContents, Role,
};
use serde_json::json;

use super::ZendeskMcp;
use super::integrations::integration_view;
use crate::access::AccessProfile;
use crate::call::Call;
use crate::error::CallError;
use crate::sunco::endpoints::Endpoint;
use crate::sunco::ids::is_resource_id;
use crate::sunco::paging::Page;
use crate::sunco::wire::IntegrationListResponse;

/// A prompt, the tools it has the model call, and how its text is written from the arguments.
struct PromptSpec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    /// (name, description, required)
    arguments: &'static [(&'static str, &'static str, bool)],
    needs: &'static [&'static str],
    render: fn(&serde_json::Map<String, serde_json::Value>) -> Result<String, String>,
}

const PROMPTS: &[PromptSpec] = &[
    PromptSpec {
        name: "handoff_to_agent",
        title: "Hand a conversation to a human agent",
        description: "Check who controls the conversation, summarise it for the agent, pass control with the summary, and stop sending.",
        arguments: &[
            ("conversationId", "The conversation to hand over.", true),
            (
                "switchboardIntegration",
                "Who takes over: a switchboard integration's id, name or type (default: next).",
                false,
            ),
            ("reason", "Why a person is needed, in a few words.", false),
        ],
        needs: &[
            "get_switchboard_status",
            "list_messages",
            "send_message",
            "pass_control",
        ],
        render: handoff,
    },
    PromptSpec {
        name: "triage_failures",
        title: "Triage delivery failures",
        description: "Read recent delivery failures, group them by what to do next, and act on each group.",
        arguments: &[
            ("channel", "Only this channel type, e.g. whatsapp.", false),
            (
                "createdAfter",
                "Only failures after this time (ISO 8601).",
                false,
            ),
        ],
        needs: &["list_delivery_failures"],
        render: triage,
    },
];

fn arg<'a>(a: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> Option<&'a str> {
    a.get(name)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn handoff(a: &serde_json::Map<String, serde_json::Value>) -> Result<String, String> {
    let conversation = arg(a, "conversationId").ok_or("conversationId is required")?;
    if !is_resource_id(conversation) {
        return Err("conversationId must be a conversation id (24 hex characters)".into());
    }
    let target = arg(a, "switchboardIntegration").unwrap_or("next");
    let reason = arg(a, "reason")
        .map(|r| format!(" The reason: {r}."))
        .unwrap_or_default();
    Ok(format!(
        "Hand conversation {conversation} to a human agent.{reason}\n\n\
1. Call get_switchboard_status with conversationId {conversation}. If the integration that \
should take over ({target}) is already active, stop: it is theirs.\n\
2. Call list_messages with conversationId {conversation} and read the newest messages.\n\
3. Write a summary for the agent, at most a few sentences: who the customer is, what they \
asked, what was tried, what is still open.\n\
4. Tell the customer, with send_message, that a person will take over (one short message, \
with an idempotencyKey).\n\
5. Call pass_control with conversationId {conversation}, switchboardIntegration \
\"{target}\" and summary set to your summary.\n\
6. Then stop: send nothing more to this conversation. The server refuses your business \
messages there (not_in_control) while the agent is in control."
    ))
}

fn triage(a: &serde_json::Map<String, serde_json::Value>) -> Result<String, String> {
    let mut filters = vec![];
    if let Some(c) = arg(a, "channel") {
        filters.push(format!("channel \"{c}\""));
    }
    if let Some(t) = arg(a, "createdAfter") {
        if crate::sunco::ids::parse_timestamp(t).is_none() {
            return Err("createdAfter must be an ISO 8601 time, e.g. 2026-11-29T09:00:00Z".into());
        }
        filters.push(format!("createdAfter \"{t}\""));
    }
    let with = if filters.is_empty() {
        String::new()
    } else {
        format!(" with {}", filters.join(" and "))
    };
    Ok(format!(
        "Triage recent delivery failures.\n\n\
1. Call list_delivery_failures{with}. If tracking.status is not on, say that failures cannot \
be seen and stop: an empty list then means nothing.\n\
2. Group the failures by nextStep.action and handle each group:\n\
   - send_template: the messaging window closed; send an approved template (content type \
template) only where the business has one for it.\n\
   - do_not_retry: the user blocked the business or unsubscribed; send nothing more there.\n\
   - change_content: send the same information in a form the channel shows (text).\n\
   - fix_recipient: check the user (get_user); reach them on another of their channels.\n\
   - retry_later: send again later with the same idempotencyKey.\n\
   - fix_integration: tell an operator which integration fails (get_integration).\n\
   - investigate: read the reason; do not resend blindly.\n\
3. Report what you did for each group and what is left for a person."
    ))
}

/// Resources: (uri, name, title, description, the tool whose access it needs).
const RESOURCES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "sunco://switchboard",
        "switchboard",
        "Routing picture",
        "The app's switchboard and its switchboard integrations (bots, agent workspaces): who can control conversations and where `next` leads. JSON.",
        "list_switchboards",
    ),
    (
        "sunco://integrations",
        "integrations",
        "Channels",
        "The app's channel integrations (type, status, name), without secrets. JSON.",
        "list_integrations",
    ),
];

/// One message, whole: where an answer that had to cut a message's strings to stay within the
/// bound ([`super::bound`]) sends the caller. Readable by callers who may use `get_message`;
/// found as `get_message` finds it, scanning up to its most (50 pages of 100) back.
pub(super) const MESSAGE_TEMPLATE: &str =
    "sunco://conversations/{conversationId}/messages/{messageId}";

/// The conversation and message a [`MESSAGE_TEMPLATE`] URI names.
fn message_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("sunco://conversations/")?;
    let (conversation, message) = rest.split_once("/messages/")?;
    (is_resource_id(conversation) && is_resource_id(message)).then_some((conversation, message))
}

/// How long a client may keep a list of prompts or resources (they change with a release).
pub(super) const LIST_TTL_MS: u64 = 300_000;
/// How long a client may keep what a resource read (the switchboard cache's own horizon).
const READ_TTL_MS: u64 = 60_000;

impl ZendeskMcp {
    fn may_use(&self, profile: Option<&AccessProfile>, tool: &str) -> bool {
        self.tool_router
            .get(tool)
            .is_some_and(|t| self.permits(profile, t))
    }

    pub(super) fn prompts_for(&self, profile: Option<&AccessProfile>) -> Vec<Prompt> {
        PROMPTS
            .iter()
            .filter(|p| p.needs.iter().all(|t| self.may_use(profile, t)))
            .map(|p| {
                let arguments = p
                    .arguments
                    .iter()
                    .map(|(name, description, required)| {
                        PromptArgument::new(*name)
                            .with_description(*description)
                            .with_required(*required)
                    })
                    .collect();
                let mut prompt = Prompt::new(p.name, Some(p.description), Some(arguments));
                prompt.title = Some(p.title.to_owned());
                prompt
            })
            .collect()
    }

    pub(super) fn prompt(
        &self,
        profile: Option<&AccessProfile>,
        name: &str,
        arguments: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<GetPromptResult, rmcp::ErrorData> {
        let spec = PROMPTS
            .iter()
            .find(|p| p.name == name && p.needs.iter().all(|t| self.may_use(profile, t)))
            .ok_or_else(|| {
                rmcp::ErrorData::invalid_params(
                    format!(
                        "no prompt {name:?}: prompts/list shows the prompts this caller may use"
                    ),
                    None,
                )
            })?;
        let text = (spec.render)(arguments)
            .map_err(|why| rmcp::ErrorData::invalid_params(format!("{name}: {why}"), None))?;
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description(spec.description),
        )
    }

    pub(super) fn resources_for(&self, profile: Option<&AccessProfile>) -> Vec<Resource> {
        RESOURCES
            .iter()
            .filter(|r| self.may_use(profile, r.4))
            .map(|(uri, name, title, description, _)| {
                Resource::new(*uri, *name)
                    .with_title(*title)
                    .with_description(*description)
                    .with_mime_type("application/json")
            })
            .collect()
    }

    pub(super) fn templates_for(
        &self,
        profile: Option<&AccessProfile>,
    ) -> Vec<rmcp::model::ResourceTemplate> {
        if !self.may_use(profile, "get_message") {
            return vec![];
        }
        let template = rmcp::model::ResourceTemplate::new(MESSAGE_TEMPLATE, "message")
            .with_title("A message, whole")
            .with_description("One message as the API shows it, never cut: for a message a tool's answer had to cut to stay within the server's bound. JSON.")
            .with_mime_type("application/json");
        vec![template]
    }

    pub(super) async fn read(
        &self,
        call: &Call,
        profile: Option<&AccessProfile>,
        uri: &str,
    ) -> Result<ReadResourceResult, rmcp::ErrorData> {
        if let Some((conversation, message)) = message_uri(uri)
            && self.may_use(profile, "get_message")
        {
            let found = self
                .ops
                .find_message(call, conversation, message, 50, |_| async {})
                .await
                .map_err(|e| rmcp::ErrorData::invalid_params(e.to_string(), Some(e.to_json())))?;
            let contents = ResourceContents::text(found.message.to_string(), uri)
                .with_mime_type("application/json");
            return Ok(ReadResourceResult::new(vec![contents]));
        }
        let Some(r) = RESOURCES
            .iter()
            .find(|r| r.0 == uri && self.may_use(profile, r.4))
        else {
            // SEP-2164: an unknown resource is invalid params, with the URI in the data.
            return Err(rmcp::ErrorData::invalid_params(
                format!(
                    "no resource {uri:?}: resources/list shows the resources this caller may read"
                ),
                Some(json!({"uri": uri})),
            ));
        };
        let failed =
            |e: CallError| rmcp::ErrorData::internal_error(e.to_string(), Some(e.to_json()));
        let body = match r.1 {
            "switchboard" => {
                let picture = self.ops.routing(false).await.map_err(failed)?;
                serde_json::to_value(&*picture).unwrap_or_default()
            }
            _ => {
                let page = Page {
                    size: Some(100),
                    ..Page::default()
                };
                let answer: IntegrationListResponse = self
                    .ops
                    .request(
                        call,
                        &Endpoint::ListIntegrations {
                            types: vec![],
                            page,
                        },
                    )
                    .await
                    .map_err(failed)?;
                json!({
                    "integrations": answer.integrations.into_iter().map(integration_view).collect::<Vec<_>>(),
                    "hasMore": answer.meta.has_more,
                })
            }
        };
        let contents =
            ResourceContents::text(body.to_string(), uri).with_mime_type("application/json");
        let mut result = ReadResourceResult::new(vec![contents]).with_ttl_ms(READ_TTL_MS);
        result = result.with_cache_scope(self.list_scope());
        Ok(result)
    }

    /// Who may keep a list: anyone without tokens; with tokens, only the caller (what it holds
    /// depends on its profile).
    pub(super) fn list_scope(&self) -> rmcp::model::CacheScope {
        if self.access().requires_tokens() {
            rmcp::model::CacheScope::Private
        } else {
            rmcp::model::CacheScope::Public
        }
    }
}
