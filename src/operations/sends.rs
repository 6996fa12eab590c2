//! Sending a message so that it is never stored twice.
//!
//! A send may fail ambiguously: the upstream may have stored the message and then failed to say
//! so (a 5xx after the write, a dropped connection, a timeout). The dispatcher never repeats such
//! a send. With an `idempotencyKey`, this module can do better: the key travels in the message's
//! metadata, so after an ambiguous failure it reads the conversation's newest messages for the key
//! and either finds the message (the send did happen) or sends again (it provably did not). A
//! repeat of a key within the retention window returns the first result without any upstream
//! write; concurrent calls with one key wait for each other.

use std::sync::Arc;

use serde_json::Value;

use crate::actors::{DispatcherHandle, TrackerHandle};
use crate::call::{Call, Mode};
use crate::error::CallError;
use crate::operations::claims::Answering;
use crate::shared::CLAIM_FIELD;
use crate::shared::{
    AcquireError, BoxFuture, IdempotencyStore, SendLease, SendRecord, SendState, StoreError,
};
use crate::sunco::commands;
use crate::sunco::endpoints::Endpoint;
use crate::sunco::paging::Page;
use crate::sunco::wire::{AuthorType, Message, MessageListResponse, MessagePost};

/// The metadata field that carries an idempotency key upstream.
pub(crate) const KEY_FIELD: &str = "mcp.idempotencyKey";
/// Sends of one key after ambiguous failures, at most.
const MAX_SENDS: usize = 3;

/// The result of a send.
#[derive(Debug, Clone)]
pub struct Sent {
    pub messages: Vec<Message>,
    /// True when an earlier call with the same key did the write (nothing was sent this time).
    pub replayed: bool,
}

/// A check that must pass right before a message is written (a claim's): run once, after an
/// idempotency key's record showed the message was not sent already.
pub(crate) type Gate<'a> = &'a (dyn Fn() -> BoxFuture<'a, Result<(), CallError>> + Send + Sync);

/// A send with an idempotency key: for which call, where, under which key, what, and the gate.
struct Keyed<'a, 'g> {
    call: &'a Call,
    conversation_id: &'a str,
    key: &'a str,
    body: MessagePost,
    gate: Option<Gate<'g>>,
}

/// Runs `gate`, if any.
async fn pass(gate: Option<Gate<'_>>) -> Result<(), CallError> {
    match gate {
        Some(g) => g().await,
        None => Ok(()),
    }
}

#[derive(Clone)]
pub(crate) struct Sends {
    dispatcher: DispatcherHandle,
    tracker: TrackerHandle,
    keys: Arc<dyn IdempotencyStore>,
}

/// Puts `key` in the message's metadata ([`KEY_FIELD`]), where a check after an ambiguous
/// failure finds it.
fn carry_key(body: &mut MessagePost, key: &str) {
    body.metadata
        .get_or_insert_with(Default::default)
        .insert(KEY_FIELD.to_owned(), Value::String(key.to_owned()));
}

/// A fingerprint of a message as it would be posted (author, content, destination, metadata and
/// the rest of `messagePost`, after decoding, so that spelling differences in the arguments do
/// not count). `DefaultHasher::new()` has fixed keys: the same message gives the same
/// fingerprint in every process of one build.
fn fingerprint(body: &MessagePost) -> u64 {
    use std::hash::{Hash, Hasher};
    /// `2.0` and `2` are one number.
    fn whole_numbers(v: &mut Value) {
        match v {
            Value::Number(n) => {
                if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    && !n.is_i64()
                    && !n.is_u64()
                {
                    *v = Value::from(f as i64);
                }
            }
            Value::Array(list) => list.iter_mut().for_each(whole_numbers),
            Value::Object(o) => o.values_mut().for_each(whole_numbers),
            _ => {}
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // Serializing our own wire type cannot fail; objects serialize with sorted keys.
    let mut value = serde_json::to_value(body).unwrap_or_default();
    whole_numbers(&mut value);
    value.to_string().hash(&mut h);
    h.finish()
}

/// Checks a caller's idempotency key: 1 to 128 printable characters.
pub(crate) fn check_key(key: &str) -> Result<(), CallError> {
    if key.is_empty() || key.chars().count() > 128 || key.chars().any(char::is_control) {
        return Err(CallError::invalid(
            "idempotencyKey",
            "must be 1 to 128 printable characters, unique per message you mean to send",
        ));
    }
    Ok(())
}

impl Sends {
    /// Sends through `dispatcher`, remembering messages in `tracker`, with the idempotency
    /// records in `keys` (shared by every replica, or in memory).
    pub(crate) fn new(
        dispatcher: DispatcherHandle,
        tracker: TrackerHandle,
        keys: Arc<dyn IdempotencyStore>,
    ) -> Self {
        Self {
            dispatcher,
            tracker,
            keys,
        }
    }

    /// Posts `body` to `conversation_id`; with `key`, at most once per key. `gate` runs right
    /// before a write (not for a repeat answered from the key's record).
    pub(crate) async fn send(
        &self,
        call: &Call,
        conversation_id: &str,
        mut body: MessagePost,
        key: Option<&str>,
        gate: Option<Gate<'_>>,
    ) -> Result<Sent, CallError> {
        let Some(key) = key else {
            pass(gate).await?;
            let messages = self.post(call, conversation_id, body).await?;
            return Ok(Sent {
                messages,
                replayed: false,
            });
        };
        // Spaces around a key are not part of it.
        let key = key.trim();
        check_key(key)?;
        carry_key(&mut body, key);
        let message = fingerprint(&body);
        // One send per key at a time: a concurrent repeat waits and then sees the result.
        let lease = self
            .keys
            .acquire(conversation_id, key, message)
            .await
            .map_err(|e| match e {
                AcquireError::Store(e) => unavailable(key, &e),
                AcquireError::Held { retry_after } => CallError::KeyHeld {
                    key: key.to_owned(),
                    retry_after,
                },
            })?;
        let mut record = lease.record().clone();
        // Once something may have been stored under the key, a repeat must be the same
        // message: a different one would be answered with the first and silently lost.
        if record.message != message {
            if record.state != SendState::Fresh {
                return Err(CallError::IdempotencyConflict {
                    key: key.to_owned(),
                });
            }
            record.message = message;
        }
        if let SendState::Sent(messages) = &record.state {
            return Ok(Sent {
                messages: serde_json::from_str(messages).map_err(|_| {
                    CallError::Internal("a remembered send could not be read back".into())
                })?,
                replayed: true,
            });
        }
        let keyed = Keyed {
            call,
            conversation_id,
            key,
            body,
            gate,
        };
        if call.mode() == Mode::DryRun {
            drop(lease);
            return self.dry_send(keyed, record.state).await;
        }
        self.send_once(keyed, lease, record).await
    }

    /// A dry run answers a replay or a conflict as a real call would, and otherwise stops before
    /// the write without touching the record: a later real send with the key sends.
    async fn dry_send(&self, k: Keyed<'_, '_>, state: SendState) -> Result<Sent, CallError> {
        // As a real call would, look for a send that may have been stored (a read).
        if state == SendState::Uncertain
            && let Some(found) = self.find(k.call, k.conversation_id, k.key).await?
        {
            return Ok(Sent {
                messages: found,
                replayed: true,
            });
        }
        pass(k.gate).await?;
        let messages = self.post(k.call, k.conversation_id, k.body).await?;
        Ok(Sent {
            messages,
            replayed: false,
        })
    }

    /// Sends under `lease` (the key's record, `record`): a send that may have been stored is
    /// looked for first, the record says uncertain before each write and sent after it, and an
    /// ambiguous failure is checked before the next of [`MAX_SENDS`] writes.
    async fn send_once(
        &self,
        keyed: Keyed<'_, '_>,
        mut lease: Box<dyn SendLease>,
        mut record: SendRecord,
    ) -> Result<Sent, CallError> {
        let Keyed {
            call,
            conversation_id,
            key,
            body,
            mut gate,
        } = keyed;
        let message = record.message;
        let sent = |messages: &Vec<Message>| SendRecord {
            message,
            state: SendState::Sent(serde_json::to_string(messages).unwrap_or_default()),
        };
        for _ in 0..MAX_SENDS {
            if record.state == SendState::Uncertain {
                match self.find(call, conversation_id, key).await {
                    Ok(Some(found)) => {
                        // The messages are stored upstream; should the record not say so, it
                        // stays uncertain and the next repeat finds them again.
                        if let Err(e) = lease.set(sent(&found)).await {
                            tracing::warn!("cannot record a keyed send as sent: {e}");
                        }
                        return Ok(Sent {
                            messages: found,
                            replayed: true,
                        });
                    }
                    Ok(None) => {}
                    // Nothing was sent, and the caller no longer waits for an answer.
                    Err(e @ CallError::Cancelled { .. }) => return Err(e),
                    Err(e) => return Err(unknown(key, &e)),
                }
            }
            // The gate once, before the first write: nothing was sent under the key yet.
            if let Err(e) = pass(gate.take()).await {
                record.state = SendState::Fresh;
                let _ = lease.set(record).await;
                return Err(e);
            }
            // Marked uncertain before the write, so a record that never learns the outcome
            // (the store failed, the call was dropped) makes the next holder check first.
            record.state = SendState::Uncertain;
            lease
                .set(record.clone())
                .await
                .map_err(|e| unavailable(key, &e))?;
            match self.post(call, conversation_id, body.clone()).await {
                Ok(messages) => {
                    if let Err(e) = lease.set(sent(&messages)).await {
                        // Still uncertain in the record: a repeat finds the message first.
                        tracing::warn!("cannot record a keyed send as sent: {e}");
                    }
                    return Ok(Sent {
                        messages,
                        replayed: false,
                    });
                }
                Err(CallError::OutcomeUnknown { reason, .. }) => {
                    tracing::info!(%reason, "a keyed send failed ambiguously; checking before sending again");
                }
                // Anything else was not stored (refused, throttled, never sent): the key is
                // fresh again (should that not be recorded, it stays uncertain: the safe side).
                Err(e) => {
                    record.state = SendState::Fresh;
                    let _ = lease.set(record).await;
                    return Err(e);
                }
            }
        }
        Err(CallError::OutcomeUnknown {
            operation: "PostMessage",
            reason: format!(
                "{MAX_SENDS} attempts failed ambiguously; call again with the same idempotencyKey ({key}) and the server will check before sending"
            ),
        })
    }

    async fn post(
        &self,
        call: &Call,
        conversation_id: &str,
        body: MessagePost,
    ) -> Result<Vec<Message>, CallError> {
        let answer: MessageListResponse = self
            .dispatcher
            .call_json(
                call,
                &Endpoint::PostMessage {
                    conversation_id: conversation_id.to_owned(),
                    body: Box::new(body),
                },
            )
            .await?;
        for m in &answer.messages {
            self.tracker.remember(conversation_id, m).await;
        }
        Ok(answer.messages)
    }

    /// The messages among the conversation's newest page that carry `key`.
    async fn find(
        &self,
        call: &Call,
        conversation_id: &str,
        key: &str,
    ) -> Result<Option<Vec<Message>>, CallError> {
        let answer: MessageListResponse = self
            .dispatcher
            .call_json(
                call,
                &Endpoint::ListMessages {
                    conversation_id: conversation_id.to_owned(),
                    page: Page::default(),
                },
            )
            .await?;
        let found: Vec<Message> = answer
            .messages
            .into_iter()
            .filter(|m| {
                m.metadata
                    .as_ref()
                    .and_then(|md| md.get(KEY_FIELD))
                    .and_then(Value::as_str)
                    == Some(key)
            })
            .collect();
        Ok((!found.is_empty()).then_some(found))
    }
}

impl super::Operations {
    /// A message into `conversation_id` for `call`, with `key` at most once. The send guard
    /// first: a business message goes only where the caller's switchboard integration
    /// ([`Operations::speaks_for`](super::Operations::speaks_for)) is in control, unless the
    /// caller may override and asks to (`override_control`).
    pub async fn send_message(
        &self,
        call: &Call,
        conversation_id: &str,
        mut body: MessagePost,
        key: Option<&str>,
        override_control: bool,
        answering: &Answering,
    ) -> Result<Sent, CallError> {
        let rules = call.rules();
        if override_control && !rules.allow_override {
            return Err(CallError::invalid(
                "overrideControl",
                "this caller may not send over another switchboard integration: only a token with allow_override = true in the tokens file may; leave it out",
            ));
        }
        check_in_band_commands(call, conversation_id, &body, key)?;
        if body.author.kind == AuthorType::Business
            && !override_control
            && let Some(mine) = self.speaks_for(call).await?
        {
            self.check_control(call, conversation_id, &mine).await?;
        }
        if !matches!(answering, Answering::Unsaid) && body.author.kind != AuthorType::Business {
            return Err(CallError::invalid(
                "claim",
                "claim, keepClaim and inReplyTo answer customers: they go with business messages only",
            ));
        }
        if let Answering::Claim { token, .. } = answering {
            // The fence goes along, so the webhook of this message is known as the claim's.
            let fence = self.token_for(token, conversation_id)?.fence;
            body.metadata
                .get_or_insert_with(Default::default)
                .insert(CLAIM_FIELD.to_owned(), Value::String(fence.to_string()));
        }
        let check = || -> BoxFuture<'_, Result<(), CallError>> {
            Box::pin(self.check_answer(call, conversation_id, answering))
        };
        let gate: Option<Gate<'_>> = match answering {
            Answering::Unsaid => None,
            _ => Some(&check),
        };
        let sent = self
            .sends
            .send(call, conversation_id, body, key, gate)
            .await?;
        if let Answering::Claim { token, keep } = answering
            && call.mode() == Mode::Live
        {
            self.answered(call, token, *keep).await;
        }
        Ok(sent)
    }
}

/// SunCo executes `%((…))%` in a message's text as a command ([`commands`]): refused in every
/// string the message carries (its content, author, metadata, and the idempotency key that goes
/// into its metadata), unless the caller's profile allows in-band commands; then each is
/// audited (the field, never the text).
fn check_in_band_commands(
    call: &Call,
    conversation_id: &str,
    body: &MessagePost,
    key: Option<&str>,
) -> Result<(), CallError> {
    let sent = serde_json::to_value(body).unwrap_or_default();
    let key_holds_one = key.is_some_and(|k| !commands::commands(k).is_empty());
    let Some(field) =
        commands::find_in("", &sent).or_else(|| key_holds_one.then(|| "idempotencyKey".to_owned()))
    else {
        return Ok(());
    };
    if !call.rules().allow_in_band_commands {
        return Err(CallError::invalid(
            field,
            "holds SunCo's in-band command syntax %((…))%, which SunCo would execute (%((switchboard:passControl:NAME))% moves control) rather than show: move control with pass_control or offer_control, and leave the syntax out of the text",
        ));
    }
    let who = call.caller();
    tracing::warn!(
        target: "audit",
        profile = %who.profile,
        subject = who.subject.as_deref(),
        client_id = who.client_id.as_deref(),
        conversation_id,
        field = %field,
        "an in-band command goes out in a message (allow_in_band_commands)"
    );
    Ok(())
}

/// The idempotency records cannot be read: nothing was sent.
fn unavailable(key: &str, why: &StoreError) -> CallError {
    CallError::Unavailable {
        component: "the idempotency records",
        reason: format!("{why}; nothing was sent for idempotencyKey {key}: try again"),
    }
}

fn unknown(key: &str, why: &CallError) -> CallError {
    CallError::OutcomeUnknown {
        operation: "PostMessage",
        reason: format!(
            "an earlier send with idempotencyKey {key} failed ambiguously and checking the conversation failed too ({why}); call again with the same key"
        ),
    }
}

#[cfg(test)]
mod tests {
    //! The state machine of a key, with paused time and an upstream that cannot be reached: so
    //! anything that would reach it shows as `unreachable`, and anything answered from the
    //! record needs no upstream at all.

    use std::time::Duration;

    use super::*;
    use crate::actors::{Actors, SupervisorSettings};
    use crate::config::{AuthMode, Config};
    use crate::error::ErrorClass;
    use crate::secret::Secret;
    use crate::sunco::auth::Scope;
    use crate::sunco::wire::{Author, Content};

    const CONVERSATION: &str = "5f0c1e2d3b4a5968778899aa";

    async fn sends() -> (Sends, Arc<dyn IdempotencyStore>, Actors) {
        let config = Config {
            app_id: "5f0c1e2d3b4a596877889900".into(),
            key_id: "app_5f0c1e2d3b4a596877889901".into(),
            key_secret: Secret::new("a-secret"),
            key_secret_file: None,
            scope: Scope::App,
            auth: AuthMode::Jwt,
            api_url: url::Url::parse("http://127.0.0.1:9").expect("url"),
            webhook_secret: None,
            timeout: Duration::from_secs(30),
            jwt_lifetime: Duration::from_secs(3600),
        };
        let mut settings = SupervisorSettings::default();
        settings.limits.max_attempts = 2;
        let actors = Actors::start(&config, settings).await.expect("start");
        let keys: Arc<dyn IdempotencyStore> = Arc::new(crate::shared::MemoryIdempotency::new(
            crate::shared::KEY_CAPACITY,
            crate::shared::KEY_RETENTION,
        ));
        let sends = Sends::new(
            actors.dispatcher.clone(),
            actors.tracker.clone(),
            keys.clone(),
        );
        (sends, keys, actors)
    }

    fn text(t: &str) -> MessagePost {
        MessagePost {
            author: Author::business(),
            content: serde_json::from_value::<Content>(
                serde_json::json!({"type": "text", "text": t}),
            )
            .expect("text content"),
            destination: None,
            metadata: None,
            schema: None,
            r#override: None,
        }
    }

    /// The fingerprint `send` computes for `body` sent with `key`.
    fn print(body: &MessagePost, key: &str) -> u64 {
        let mut body = body.clone();
        carry_key(&mut body, key);
        fingerprint(&body)
    }

    #[tokio::test(start_paused = true)]
    async fn a_sent_key_replays_without_the_upstream_and_refuses_another_message() {
        let (sends, keys, actors) = sends().await;
        let body = text("hello");
        let mut lease = keys
            .acquire(CONVERSATION, "k", print(&body, "k"))
            .await
            .expect("acquire");
        let record = SendRecord {
            message: print(&body, "k"),
            state: SendState::Sent("[]".into()),
        };
        lease.set(record).await.expect("set");
        drop(lease);
        let replay = sends
            .send(&Call::internal(), CONVERSATION, body, Some("k"), None)
            .await
            .expect("replay");
        assert!(replay.replayed, "answered from the record");
        let e = sends
            .send(
                &Call::internal(),
                CONVERSATION,
                text("another"),
                Some("k"),
                None,
            )
            .await
            .expect_err("another message under a sent key");
        assert_eq!(e.class(), ErrorClass::IdempotencyConflict);
        actors.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_that_never_reached_the_upstream_leaves_the_key_fresh() {
        let (sends, keys, actors) = sends().await;
        let e = sends
            .send(
                &Call::internal(),
                CONVERSATION,
                text("first"),
                Some("k"),
                None,
            )
            .await
            .expect_err("unreachable");
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e}");
        let lease = keys.acquire(CONVERSATION, "k", 0).await.expect("acquire");
        assert_eq!(
            lease.record().state,
            SendState::Fresh,
            "nothing may have been stored"
        );
        drop(lease);
        // So the key may carry another message (nothing was stored under it).
        let e = sends
            .send(
                &Call::internal(),
                CONVERSATION,
                text("second"),
                Some("k"),
                None,
            )
            .await
            .expect_err("unreachable");
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e}");
        actors.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_uncertain_key_is_checked_before_anything_is_sent_again() {
        let (sends, keys, actors) = sends().await;
        let body = text("hello");
        let mut lease = keys
            .acquire(CONVERSATION, "k", print(&body, "k"))
            .await
            .expect("acquire");
        let record = SendRecord {
            message: print(&body, "k"),
            state: SendState::Uncertain,
        };
        lease.set(record).await.expect("set");
        drop(lease);
        // The check cannot be made: the outcome stays unknown, and nothing is sent blind.
        let e = sends
            .send(&Call::internal(), CONVERSATION, body, Some("k"), None)
            .await
            .expect_err("the check fails");
        assert_eq!(e.class(), ErrorClass::OutcomeUnknown, "{e}");
        let e = sends
            .send(
                &Call::internal(),
                CONVERSATION,
                text("another"),
                Some("k"),
                None,
            )
            .await
            .expect_err("another message under an uncertain key");
        assert_eq!(e.class(), ErrorClass::IdempotencyConflict);
        let stats = actors.dispatcher.stats().await.expect("stats");
        assert_eq!(
            stats.attempts, 2,
            "one ListMessages (two attempts), no PostMessage"
        );
        actors.shutdown().await;
    }
}
