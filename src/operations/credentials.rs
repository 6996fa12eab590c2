//! Whether the upstream accepts the configured key.

use crate::call::Call;
use crate::error::CallError;
use crate::sunco::auth::Scope;
use crate::sunco::endpoints::Endpoint;

use super::Operations;

/// The upstream's verdict on the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredentialVerdict {
    Accepted,
    /// Refused, with the upstream's reason.
    Refused(String),
}

impl Operations {
    /// Asks the upstream once. With an app or account key this loads the switchboard cache,
    /// which every routing call needs; integration keys cannot read switchboards, so a `GetUser`
    /// of a user that does not exist proves them (404 means the key was accepted). `Err` when
    /// the upstream gave no verdict (unreachable, throttled): try again later.
    pub(crate) async fn check_credentials(
        &self,
        call: &Call,
        scope: Scope,
    ) -> Result<CredentialVerdict, CallError> {
        let result = match scope {
            Scope::App | Scope::Account => self.actors.switchboard.picture(true).await.map(|_| ()),
            Scope::Integration => match self
                .actors
                .dispatcher
                .call(
                    call,
                    &Endpoint::GetUser {
                        user: "zendesk-messaging-mcp-credentials-check".into(),
                    },
                )
                .await
            {
                Err(CallError::Upstream { status: 404, .. }) => Ok(()),
                other => other.map(|_| ()),
            },
        };
        match result {
            Ok(()) => Ok(CredentialVerdict::Accepted),
            Err(CallError::Unauthorized { reason, .. }) => Ok(CredentialVerdict::Refused(reason)),
            Err(CallError::Upstream {
                status: 403, title, ..
            }) => Ok(CredentialVerdict::Refused(title)),
            Err(e) => Err(e),
        }
    }
}
