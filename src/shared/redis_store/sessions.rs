//! MCP sessions on Redis: rmcp's [`SessionStore`] (a 2025-11-25 session started on one replica
//! continues on another, which restores it by replaying the client's `initialize`) and the
//! sessions' owners ([`SessionOwners`]), in one hash per session: `state` (the client's
//! `initialize` parameters, JSON) and `owner`.
//!
//! The hash lives [`SESSION_TTL`] after the session was last looked up by a replica that did not
//! keep its owner (at least once a minute per replica while it is used). A replica trusts the
//! owners it has read for a minute (an owner never changes); a `DELETE` deletes the hash and
//! publishes the id on the app's `session-ended` channel, on which every replica forgets the
//! owner and closes what it holds of the session. After a lost subscription a replica trusts no
//! owner it kept (it cannot know which sessions ended meanwhile) and reads each again; while
//! Redis cannot answer, the sessions this replica has seen go on with the owners it remembers
//! (degraded, as reads do), and only a session it never saw is refused.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};
use tokio::sync::broadcast;

use super::Redis;
use crate::shared::{BoxFuture, SESSION_TTL, SessionOwners, StoreError};

/// How long a replica keeps an owner it read without hearing of the session's end: the
/// backstop should a notice be lost without the subscription noticing.
const KEPT_FOR: Duration = Duration::from_secs(60);

/// Sets one field of a session's hash and renews the hash's lifetime, at once.
static SET_FIELD: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
",
    )
});

/// Ends a session: deletes its hash and tells every replica, at once.
static END: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1])
return redis.call('PUBLISH', KEYS[2], ARGV[1])
",
    )
});

/// The sessions of the app, shared by every replica.
#[derive(Debug, Clone)]
pub(crate) struct RedisSessions {
    redis: Redis,
    /// The owners read within [`KEPT_FOR`] and heard of since: trusted.
    kept: moka::sync::Cache<String, String>,
    /// Every owner this replica has read, for while Redis cannot answer.
    known: moka::sync::Cache<String, String>,
    ended: broadcast::Sender<String>,
    /// Held for its `Drop`: the subscription ends with the last clone.
    _listener: Arc<Listener>,
}

/// Stops the `session-ended` subscription with the last clone.
#[derive(Debug)]
struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RedisSessions {
    /// Subscribes to the app's `session-ended` channel; returns once the subscription is in
    /// place.
    pub(crate) async fn new(redis: Redis) -> Result<Self, StoreError> {
        let kept: moka::sync::Cache<String, String> = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(KEPT_FOR)
            .build();
        let known: moka::sync::Cache<String, String> = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_idle(SESSION_TTL)
            .build();
        let ended = broadcast::channel(256).0;
        let (forget, forget_known, tell) = (kept.clone(), known.clone(), ended.clone());
        let listener =
            super::invalidation::listen_to(&redis, "session-ended", move |heard| match heard {
                Some(id) => {
                    forget.invalidate(&id);
                    forget_known.invalidate(&id);
                    let _ = tell.send(id);
                }
                None => forget.invalidate_all(),
            })
            .await?;
        Ok(Self {
            redis,
            kept,
            known,
            ended,
            _listener: Arc::new(Listener(listener)),
        })
    }

    fn key(&self, session_id: &str) -> String {
        self.redis.key(&format!("mcp-session:{session_id}"))
    }

    async fn set(
        &self,
        operation: &'static str,
        id: &str,
        field: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let mut s = SET_FIELD.key(self.key(id));
        s.arg(field).arg(value).arg(SESSION_TTL.as_millis() as u64);
        let _: i64 = self.redis.run(operation, &s).await?;
        Ok(())
    }

    async fn field(
        &self,
        operation: &'static str,
        id: &str,
        field: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.key(id)).arg(field);
        self.redis.query(operation, &cmd).await
    }
}

impl SessionOwners for RedisSessions {
    fn owner<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            if let Some(owner) = self.kept.get(id) {
                return Ok(Some(owner));
            }
            let owner = match self.field("session.owner", id, "owner").await {
                Ok(owner) => owner,
                // Redis cannot say: a session this replica has seen goes on (degraded).
                Err(e) => return self.known.get(id).map(Some).ok_or(e),
            };
            match &owner {
                Some(o) => {
                    self.kept.insert(id.to_owned(), o.clone());
                    self.known.insert(id.to_owned(), o.clone());
                    // Used: it lives on (a replica that cannot renew it now renews it later).
                    let mut renew = redis::cmd("PEXPIRE");
                    renew.arg(self.key(id)).arg(SESSION_TTL.as_millis() as u64);
                    let _ = self.redis.query::<i64>("session.renew", &renew).await;
                }
                None => self.known.invalidate(id),
            }
            Ok(owner)
        })
    }

    fn record<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.set("session.record", id, "owner", owner).await?;
            self.kept.insert(id.to_owned(), owner.to_owned());
            self.known.insert(id.to_owned(), owner.to_owned());
            Ok(())
        })
    }

    fn end<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut s = END.key(self.key(id));
            s.key(self.redis.key("session-ended")).arg(id);
            let _: i64 = self.redis.run("session.end", &s).await?;
            // Only once it ended everywhere: until then a DELETE sent again must find it.
            self.kept.invalidate(id);
            self.known.invalidate(id);
            Ok(())
        })
    }

    fn ended(&self) -> broadcast::Receiver<String> {
        self.ended.subscribe()
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let json = self.field("session.load", session_id, "state").await?;
        Ok(match json {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        })
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let json = serde_json::to_string(state)?;
        self.set("session.store", session_id, "state", &json)
            .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        // The door ends the session everywhere once the DELETE is answered (SessionOwners::end).
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(session_id));
        let _: i64 = self.redis.query("session.delete", &cmd).await?;
        Ok(())
    }
}
