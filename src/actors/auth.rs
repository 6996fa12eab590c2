//! The auth actor: owns the API key and hands out `Authorization` header values.
//!
//! In JWT mode it mints a token with the configured lifetime and refreshes it on a timer before
//! it expires. After an upstream 401 the dispatcher reports the rejected token's generation; the
//! actor re-reads the secret file (if the secret came from one), mints once more, and the request
//! is tried once more. A secret file is also polled, so a rotated key is picked up without a
//! restart. The secret never leaves this module except inside a [`Secret`] header value.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::{Slot, ask};
use crate::config::{AuthMode, Config, read_secret_file};
use crate::error::CallError;
use crate::secret::Secret;
use crate::sunco::auth::{Scope, basic_header, bearer_header, mint_jwt};
use crate::telemetry::{Metrics, kv};

/// How often a secret file is checked for a new key.
const SECRET_FILE_POLL: Duration = Duration::from_secs(2);

/// A header value and the generation of the key/token it came from.
#[derive(Debug, Clone)]
pub struct Credential {
    pub header: Secret,
    pub generation: u64,
}

/// What the auth actor was started with; cloned into every incarnation.
#[derive(Debug, Clone)]
pub(crate) struct AuthArgs {
    pub(crate) mode: AuthMode,
    pub(crate) key_id: String,
    pub(crate) secret: Secret,
    pub(crate) secret_file: Option<PathBuf>,
    pub(crate) scope: Scope,
    /// `0` mints tokens without `exp`, which never need refreshing.
    pub(crate) jwt_lifetime: Duration,
    pub(crate) metrics: Arc<Metrics>,
    /// Where the current credential is published for readers (see [`AuthHandle::credential`]).
    pub(crate) published: Arc<watch::Sender<Option<Credential>>>,
}

impl AuthArgs {
    pub(crate) fn from_config(c: &Config, metrics: Arc<Metrics>) -> Self {
        Self {
            mode: c.auth,
            key_id: c.key_id.clone(),
            secret: c.key_secret.clone(),
            secret_file: c.key_secret_file.clone(),
            scope: c.scope,
            jwt_lifetime: c.jwt_lifetime,
            metrics,
            published: Arc::new(watch::Sender::new(None)),
        }
    }
}

pub enum AuthMsg {
    /// The header to use now.
    Header(oneshot::Sender<Result<Credential, CallError>>),
    /// The upstream refused the credential of `generation`: make a new one (once per generation).
    Rejected {
        generation: u64,
        reply: oneshot::Sender<Result<Credential, CallError>>,
    },
    /// Timer: mint a fresh token before the current one expires.
    Refresh { generation: u64 },
    /// Timer: look for a rotated secret file.
    CheckFile,
    /// How many credentials have been made (for tests and metrics).
    Minted(oneshot::Sender<u64>),
}

pub(crate) struct AuthActor;

pub(crate) struct AuthState {
    args: AuthArgs,
    current: Credential,
    minted: u64,
}

impl AuthState {
    /// Makes a new credential, recording the refresh in a span and a metric.
    fn mint(&mut self, myself: &ActorRef<AuthMsg>, why: &'static str) -> Result<(), CallError> {
        let span = tracing::info_span!("auth.refresh", otel.name = "auth refresh", reason = why);
        let _entered = span.enter();
        let outcome = self.make(myself);
        let label = if outcome.is_ok() { "ok" } else { "error" };
        self.args
            .metrics
            .token_refreshes
            .add(1, &[kv("outcome", label), kv("reason", why)]);
        outcome
    }

    fn make(&mut self, myself: &ActorRef<AuthMsg>) -> Result<(), CallError> {
        let generation = self.current.generation + 1;
        let header = match self.args.mode {
            AuthMode::Basic => basic_header(&self.args.key_id, &self.args.secret),
            AuthMode::Jwt => {
                let lifetime = self.args.jwt_lifetime;
                let exp = (!lifetime.is_zero()).then(|| {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs()
                        + lifetime.as_secs().max(1)
                });
                let token = mint_jwt(&self.args.key_id, &self.args.secret, self.args.scope, exp)
                    .map_err(|e| CallError::Internal(e.to_string()))?;
                if !lifetime.is_zero() {
                    // Refresh at 80% of the lifetime so a token in use never expires mid-flight.
                    let at = lifetime.mul_f64(0.8).max(Duration::from_millis(500));
                    myself.send_after(at, move || AuthMsg::Refresh { generation });
                }
                bearer_header(&token)
            }
        };
        self.current = Credential { header, generation };
        self.args.published.send_replace(Some(self.current.clone()));
        self.minted += 1;
        tracing::debug!(
            generation,
            mode = self.args.mode.as_str(),
            "minted a credential"
        );
        Ok(())
    }

    /// Re-reads the secret file; true when the secret changed.
    fn reload_secret(&mut self) -> bool {
        let Some(path) = &self.args.secret_file else {
            return false;
        };
        match read_secret_file(path, "") {
            Ok(s) if !s.matches(self.args.secret.expose().as_bytes()) => {
                self.args.secret = s;
                tracing::info!(file = %path.display(), "the key secret file changed; using the new secret");
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(
                    "cannot re-read the key secret file: {e}; keeping the current secret"
                );
                false
            }
        }
    }
}

impl Actor for AuthActor {
    type Msg = AuthMsg;
    type State = AuthState;
    type Arguments = AuthArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AuthMsg>,
        args: AuthArgs,
    ) -> Result<AuthState, ActorProcessingErr> {
        let mut state = AuthState {
            args,
            current: Credential {
                header: Secret::new(String::new()),
                generation: 0,
            },
            minted: 0,
        };
        state.reload_secret();
        state.mint(&myself, "start").map_err(|e| e.to_string())?;
        if state.args.secret_file.is_some() {
            myself.send_after(SECRET_FILE_POLL, || AuthMsg::CheckFile);
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<AuthMsg>,
        msg: AuthMsg,
        state: &mut AuthState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AuthMsg::Header(reply) => {
                let _ = reply.send(Ok(state.current.clone()));
            }
            AuthMsg::Rejected { generation, reply } => {
                // Several requests may report the same rejected token: mint only once for it.
                let result = if generation == state.current.generation {
                    state.reload_secret();
                    state
                        .mint(&myself, "rejected")
                        .map(|()| state.current.clone())
                } else {
                    Ok(state.current.clone())
                };
                let _ = reply.send(result);
            }
            AuthMsg::Refresh { generation } => {
                if generation == state.current.generation
                    && let Err(e) = state.mint(&myself, "timer")
                {
                    tracing::warn!("token refresh failed: {e}");
                }
            }
            AuthMsg::CheckFile => {
                if state.reload_secret()
                    && let Err(e) = state.mint(&myself, "rotated")
                {
                    tracing::warn!("minting with the rotated secret failed: {e}");
                }
                myself.send_after(SECRET_FILE_POLL, || AuthMsg::CheckFile);
            }
            AuthMsg::Minted(reply) => {
                let _ = reply.send(state.minted);
            }
        }
        Ok(())
    }
}

/// How the rest of the server asks for credentials.
#[derive(Clone)]
pub struct AuthHandle {
    pub slot: Arc<Slot<AuthMsg>>,
    /// The credential the actor last made, readable without a round trip to it.
    pub published: watch::Receiver<Option<Credential>>,
}

impl AuthHandle {
    /// The header to use now. Every upstream attempt needs one, so it is read from what the
    /// actor published rather than asked of it; only before the first mint does it ask.
    pub async fn credential(&self, until: Instant) -> Result<Credential, CallError> {
        if let Some(current) = self.published.borrow().clone() {
            return Ok(current);
        }
        ask(&self.slot, until, AuthMsg::Header).await?
    }

    /// Reports that `rejected` was refused; returns the credential to try once more.
    pub(crate) async fn after_rejection(
        &self,
        rejected: u64,
        until: Instant,
    ) -> Result<Credential, CallError> {
        ask(&self.slot, until, |reply| AuthMsg::Rejected {
            generation: rejected,
            reply,
        })
        .await?
    }

    /// How many credentials the current incarnation has made.
    pub async fn minted(&self, until: Instant) -> Result<u64, CallError> {
        ask(&self.slot, until, AuthMsg::Minted).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Telemetry;

    /// An auth actor minting JWTs that live `lifetime`, and its handle.
    async fn started(lifetime: Duration) -> AuthHandle {
        let published = Arc::new(watch::channel(None).0);
        let args = AuthArgs {
            mode: AuthMode::Jwt,
            key_id: "app_5f0c1e2d3b4a596877889901".into(),
            secret: Secret::new("a-secret"),
            secret_file: None,
            scope: Scope::App,
            jwt_lifetime: lifetime,
            metrics: Telemetry::local().metrics.clone(),
            published: published.clone(),
        };
        let (actor, _) = Actor::spawn(None, AuthActor, args).await.expect("spawn");
        let slot = Slot::new("the auth actor");
        slot.set(Some(actor));
        AuthHandle {
            slot,
            published: published.subscribe(),
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_refreshed_at_80_percent_of_its_lifetime() {
        let auth = started(Duration::from_secs(100)).await;
        let first = auth.credential(soon()).await.expect("credential");
        tokio::time::sleep(Duration::from_secs(79)).await;
        assert_eq!(
            auth.credential(soon())
                .await
                .expect("credential")
                .generation,
            first.generation,
            "not refreshed before 80% of the lifetime"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let refreshed = auth.credential(soon()).await.expect("credential");
        assert_eq!(
            refreshed.generation,
            first.generation + 1,
            "refreshed at 80%"
        );
        // (The token's text may be the same: its `exp` comes from the wall clock, which paused
        // time does not move.)
        assert_eq!(auth.minted(soon()).await.expect("minted"), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_token_is_replaced_once_however_many_callers_report_it() {
        let auth = started(Duration::from_secs(3600)).await;
        let first = auth.credential(soon()).await.expect("credential");
        let (a, b) = tokio::join!(
            auth.after_rejection(first.generation, soon()),
            auth.after_rejection(first.generation, soon())
        );
        let (a, b) = (a.expect("fresh"), b.expect("fresh"));
        assert_eq!(a.generation, first.generation + 1);
        assert_eq!(
            (a.generation, a.header.expose()),
            (b.generation, b.header.expose()),
            "one new credential for one rejected one"
        );
        assert_eq!(auth.minted(soon()).await.expect("minted"), 2);
    }
}
