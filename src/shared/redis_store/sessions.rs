//! MCP sessions on Redis: rmcp's [`SessionStore`] (a 2025-11-25 session started on one replica
//! continues on another, which restores it by replaying the client's `initialize`) and the
//! sessions' owners ([`SessionOwners`]), in one hash per session: `state` (the client's
//! `initialize` parameters, JSON) and `owner`.
//!
//! The hash lives [`SESSION_TTL`] after the session was last looked up by a replica that did not
//! keep its owner (at least once a minute per replica while it is used). A replica keeps the
//! owners it has read for a minute (an owner never changes); a `DELETE` deletes the hash
//! and publishes the id on the app's `session-ended` channel, on which every replica forgets
//! the owner and closes what it holds of the session. After a lost subscription a replica
//! forgets every owner it kept, since it cannot know which sessions ended meanwhile.

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

/// A session's owner, its hash's lifetime renewed (a session lives while it is used).
static OWNER: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1])) end
return owner
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
    kept: moka::sync::Cache<String, String>,
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
        let ended = broadcast::channel(256).0;
        let (forget, tell) = (kept.clone(), ended.clone());
        let listener =
            super::invalidation::listen_to(&redis, "session-ended", move |heard| match heard {
                Some(id) => {
                    forget.invalidate(&id);
                    let _ = tell.send(id);
                }
                None => forget.invalidate_all(),
            })
            .await?;
        Ok(Self {
            redis,
            kept,
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
            let mut s = OWNER.key(self.key(id));
            s.arg(SESSION_TTL.as_millis() as u64);
            let owner: Option<String> = self.redis.run("session.owner", &s).await?;
            if let Some(o) = &owner {
                self.kept.insert(id.to_owned(), o.clone());
            }
            Ok(owner)
        })
    }

    fn record<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.set("session.record", id, "owner", owner).await?;
            self.kept.insert(id.to_owned(), owner.to_owned());
            Ok(())
        })
    }

    fn end<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.kept.invalidate(id);
            let mut s = END.key(self.key(id));
            s.key(self.redis.key("session-ended")).arg(id);
            let _: i64 = self.redis.run("session.end", &s).await?;
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
