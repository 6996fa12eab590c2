//! A tool call as a value: who calls and under which rules, live or dry run, its span, its
//! deadline, its cancellation, and where its progress notifications go.
//!
//! A [`Call`] is made once, where a tool call enters (`mcp::entry`), and handed down
//! explicitly: the tool takes it, the operations pass it on, and the dispatcher reads from it
//! whether a write is sent and whether the call still wants an answer. Nothing is kept in
//! task-locals or globals, so work a call starts in another task (a clone of the value moves
//! with it) acts under the same rules and stops when the call is cancelled.
//!
//! The server's own work (cache loads, the webhook check, the readiness probe) runs as
//! [`Call::internal`]: live, never cancelled, without a caller.

use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::access::CallerRules;

/// Whether a call's writes reach the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Writes are sent.
    Live,
    /// Writes are validated and answered with the request they would send; nothing is sent.
    DryRun,
}

/// Who made a call, for the audit records and spans (never a secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The access profile's name (`default` without tokens).
    pub(crate) profile: String,
    /// An OAuth caller's subject and client (none for a static token).
    pub(crate) subject: Option<String>,
    pub(crate) client_id: Option<String>,
    /// The peer's IP address, and the `X-Forwarded-For` a proxy in front added (as given).
    pub(crate) address: Option<String>,
    pub(crate) forwarded_for: Option<String>,
}

impl Caller {
    /// Who holds what this caller claims: the OAuth client and subject, else the access
    /// profile (every caller of one static token is one holder).
    pub(crate) fn holder(&self) -> String {
        match (&self.client_id, &self.subject) {
            (None, None) => format!("profile:{}", self.profile),
            (client, subject) => format!(
                "oauth:{}:{}",
                client.as_deref().unwrap_or(""),
                subject.as_deref().unwrap_or("")
            ),
        }
    }
}

/// The `/mcp` turn a call holds (the bound on concurrent work): a call that waits rather than
/// works gives it back, and the front door takes it back when the answer begins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Turn(Arc<std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>>);

impl Turn {
    pub(crate) fn held(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        Self(Arc::new(std::sync::Mutex::new(Some(permit))))
    }

    /// Frees the turn for other work (once; later calls do nothing).
    pub(crate) fn give_back(&self) {
        drop(self.0.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

/// Where a call's progress notifications go: the client's `progressToken` and its session.
/// Every notification's `progress` is above the one before (MCP requires it to increase),
/// whichever part of the call sends it: a scan, a wait for work, a wait for the upstream.
#[derive(Clone)]
pub(crate) struct Progress {
    peer: rmcp::Peer<rmcp::RoleServer>,
    token: rmcp::model::ProgressToken,
    last: Arc<std::sync::Mutex<f64>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("token", &self.token)
            .finish()
    }
}

impl Progress {
    pub(crate) fn new(
        peer: rmcp::Peer<rmcp::RoleServer>,
        token: rmcp::model::ProgressToken,
    ) -> Self {
        Self {
            peer,
            token,
            last: Arc::new(std::sync::Mutex::new(0.0)),
        }
    }

    /// Tells the client: `progress` (raised above the last one sent when it is not), out of
    /// `total` when known and not passed, with a message. A client gone away, or one that does
    /// not read, is not an error of the call and holds it up at most 100 ms.
    pub(crate) async fn tell(&self, progress: f64, total: Option<f64>, message: String) {
        let progress = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let next = if progress > *last {
                progress
            } else {
                *last + 1.0
            };
            *last = next;
            next
        };
        let mut note = rmcp::model::ProgressNotificationParam::new(self.token.clone(), progress);
        // Raised past its total by other notes of the call, the count no longer says how much
        // of the total is done.
        note.total = total.filter(|t| progress <= *t);
        note.message = Some(message);
        let told = self.peer.notify_progress(note);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), told).await;
    }
}

/// One call and everything it carries. Cheap to clone: clones share the cancellation.
#[derive(Debug, Clone)]
pub struct Call {
    caller: Arc<Caller>,
    rules: Arc<CallerRules>,
    deadline: Option<Instant>,
    cancel: CancellationToken,
    span: tracing::Span,
    turn: Turn,
    progress: Option<Progress>,
}

impl Call {
    /// A caller's call: its rules as they were when the call started (a settings reload
    /// meanwhile changes nothing for it), cancelled through `cancel`.
    pub fn new(
        caller: Caller,
        rules: CallerRules,
        cancel: CancellationToken,
        span: tracing::Span,
    ) -> Self {
        Self {
            caller: Arc::new(caller),
            rules: Arc::new(rules),
            deadline: None,
            cancel,
            span,
            turn: Turn::default(),
            progress: None,
        }
    }

    /// The same call, telling its progress to the client (which gave a `progressToken`).
    pub(crate) fn with_progress(mut self, progress: Option<Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Where the call's progress notifications go, when the client asked for them.
    pub(crate) fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }

    /// The same call, holding `turn`.
    pub(crate) fn with_turn(mut self, turn: Turn) -> Self {
        self.turn = turn;
        self
    }

    /// Gives the call's `/mcp` turn back while it waits rather than works.
    pub(crate) fn give_back_turn(&self) {
        self.turn.give_back();
    }

    /// Resolves when the client cancels the call or goes away.
    pub(crate) async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// The server's own work: live, never cancelled, no deadline but each request's own.
    pub fn internal() -> Self {
        Self::internal_until(CancellationToken::new())
    }

    /// The server's own work that stops when `cancel` is cancelled (at shutdown, say), traced
    /// under the span it is made in (a cache load's, say).
    pub(crate) fn internal_until(cancel: CancellationToken) -> Self {
        Self::new(
            Caller {
                profile: "server".into(),
                ..Caller::default()
            },
            CallerRules::default(),
            cancel,
            tracing::Span::current(),
        )
    }

    /// The same call, ending by `deadline` at the latest (an earlier deadline stays).
    pub(crate) fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }

    pub(crate) fn caller(&self) -> &Caller {
        &self.caller
    }

    /// What applies to the caller (the send guard's integration, overrides, dry run).
    pub(crate) fn rules(&self) -> &CallerRules {
        &self.rules
    }

    pub(crate) fn mode(&self) -> Mode {
        if self.rules.dry_run {
            Mode::DryRun
        } else {
            Mode::Live
        }
    }

    /// When the call's work must have ended, if the call has a deadline of its own.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the client cancelled the call or went away.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The call's span: what the call starts elsewhere is traced under it.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_deadline_stays() {
        let now = Instant::now();
        let soon = now + std::time::Duration::from_secs(1);
        let later = now + std::time::Duration::from_secs(5);
        let call = Call::internal().with_deadline(soon).with_deadline(later);
        assert_eq!(call.deadline(), Some(soon));
    }

    #[test]
    fn clones_share_the_cancellation_and_the_rules() {
        let cancel = CancellationToken::new();
        let rules = CallerRules {
            dry_run: true,
            ..CallerRules::default()
        };
        let call = Call::new(
            Caller::default(),
            rules,
            cancel.clone(),
            tracing::Span::none(),
        );
        let moved = call.clone();
        cancel.cancel();
        assert!(moved.is_cancelled());
        assert_eq!(moved.mode(), Mode::DryRun);
        assert_eq!(Call::internal().mode(), Mode::Live);
    }
}
