//! A user's conversations, by id or externalId.

use crate::error::CallError;
use crate::sunco::endpoints::{ConversationFilter, Endpoint};
use crate::sunco::paging::Page;
use crate::sunco::wire::ConversationListResponse;

use super::Operations;

impl Operations {
    /// One page of a user's conversations (`ListConversations`). A `UserId` filter also takes an
    /// externalId, as `GetUser` does: the id is tried first, then the externalId on a 404.
    pub async fn list_conversations(
        &self,
        filter: ConversationFilter,
        page: Page,
    ) -> Result<ConversationListResponse, CallError> {
        let dispatcher = &self.actors.dispatcher;
        let first = dispatcher
            .call_json::<ConversationListResponse>(&Endpoint::ListConversations {
                filter: filter.clone(),
                page: page.clone(),
            })
            .await;
        match (first, filter) {
            (Err(CallError::Upstream { status: 404, .. }), ConversationFilter::UserId(id)) => {
                dispatcher
                    .call_json(&Endpoint::ListConversations {
                        filter: ConversationFilter::UserExternalId(id),
                        page,
                    })
                    .await
            }
            (other, _) => other,
        }
    }
}
