//! Tool arguments several families of tools share; each family's own arguments and results
//! stand beside its tools. The `///` docs become the schemas an LLM reads, so they are written
//! for it. Field names are the Sunshine Conversations API's (camelCase), so one vocabulary runs
//! from the tool to the API docs. Every argument object refuses unknown fields.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ConversationArgs {
    /// The conversation's id (24 hex characters).
    pub(crate) conversation_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}
