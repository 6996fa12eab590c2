//! What the customer sees of an agent at work: typing indicators and read receipts.

use crate::call::Call;
use crate::error::CallError;
use crate::operations::Operations;
use crate::sunco::endpoints::Endpoint;

/// The activities the business may post (`activityTypes.type`).
pub(crate) const ACTIVITIES: [&str; 3] = ["typing:start", "typing:stop", "conversation:read"];

impl Operations {
    /// Posts an activity as the business (`PostActivity`): the typing indicator or a read
    /// receipt. The send guard applies: a bot shows no typing where a human agent answers.
    pub(crate) async fn send_activity(
        &self,
        call: &Call,
        conversation_id: &str,
        kind: &str,
    ) -> Result<(), CallError> {
        if !ACTIVITIES.contains(&kind) {
            return Err(CallError::invalid(
                "type",
                "must be typing:start, typing:stop or conversation:read",
            ));
        }
        if let Some(mine) = self.speaks_for(call).await? {
            self.check_control(call, conversation_id, &mine).await?;
        }
        let endpoint = Endpoint::PostActivity {
            conversation_id: conversation_id.to_owned(),
            body: crate::sunco::wire::ActivityPost {
                author: crate::sunco::wire::Author::business(),
                kind: kind.to_owned(),
            },
        };
        self.actors
            .dispatcher
            .call(call, &endpoint)
            .await
            .map(|_| ())
    }

    /// The activities a claim asked for, each `sent`, `dry_run` or why it failed (the claim
    /// holds either way).
    pub(super) async fn claim_activities(
        &self,
        call: &Call,
        conversation_id: &str,
        kinds: &[&str],
    ) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let outcome = match self.send_activity(call, conversation_id, kind).await {
                Ok(()) => "sent".to_owned(),
                Err(CallError::DryRun { .. }) => "dry_run".to_owned(),
                Err(e) => e.to_string(),
            };
            out.push(((*kind).to_owned(), outcome));
        }
        out
    }
}
