//! rmcp's [`SessionStore`] on Redis: a 2025-11-25 session started on one replica continues on
//! another, which restores it by replaying the client's `initialize`.

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};

use super::Redis;
use std::time::Duration;

/// Sessions kept this long after their last store (rmcp stores once, at `initialize`).
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// [`SessionStore`] shared by every replica: one key per session, holding the client's
/// `initialize` parameters (JSON). What a replica keeps per session outside the store (a
/// client's log level) starts afresh on another replica.
#[derive(Debug, Clone)]
pub(crate) struct RedisSessionStore {
    redis: Redis,
}

impl RedisSessionStore {
    pub(crate) fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn key(&self, session_id: &str) -> String {
        self.redis.key(&format!("session:{session_id}"))
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(session_id));
        let json: Option<String> = self.redis.query("session.load", &cmd).await?;
        Ok(match json {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        })
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(session_id))
            .arg(serde_json::to_string(state)?)
            .arg("PX")
            .arg(SESSION_TTL.as_millis() as u64);
        let _: () = self.redis.query("session.store", &cmd).await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(session_id));
        let _: i64 = self.redis.query("session.delete", &cmd).await?;
        Ok(())
    }
}
