//! [`Invalidation`] on Redis pub/sub: every replica's caches hear of a switchboard change.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;

use super::Redis;
use crate::shared::{BoxFuture, Heard, Invalidation, StoreError, Subscription};

/// [`Invalidation`] through a Redis pub/sub channel of the app. Pub/sub is at most once: after
/// a lost connection every subscriber hears [`Heard::Lost`] (and drops what it holds) once the
/// subscription is back, and the caches' TTL stays the backstop.
#[derive(Debug)]
pub(crate) struct RedisInvalidation {
    redis: Redis,
    channel: String,
    notices: broadcast::Sender<Heard>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for RedisInvalidation {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl RedisInvalidation {
    /// Subscribes to the app's channel; returns once the subscription is in place, so no
    /// notice published after this returns is missed.
    pub(crate) async fn new(redis: Redis) -> Result<Self, StoreError> {
        Self::on(redis, "switchboard-changed").await
    }

    /// The same on the app's channel `name` (`work-arrived`: the claims' waiters).
    pub(crate) async fn on(redis: Redis, name: &str) -> Result<Self, StoreError> {
        let (notices, _) = broadcast::channel(64);
        let forward = notices.clone();
        let listener = listen_to(&redis, name, move |heard| {
            let _ = forward.send(match heard {
                Some(_) => Heard::Changed,
                None => Heard::Lost,
            });
        })
        .await?;
        Ok(Self {
            channel: redis.key(name),
            redis,
            notices,
            listener,
        })
    }
}

/// Subscribes to the app's channel `name` and hands each message's payload to `forward`, and
/// `None` whenever messages may have been missed (after a lost connection); returns once the
/// subscription is in place, so no message published after this returns is missed. The task
/// ends when aborted.
pub(super) async fn listen_to(
    redis: &Redis,
    name: &str,
    forward: impl Fn(Option<String>) + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, StoreError> {
    let channel = redis.key(name);
    let first = subscribe(redis, &channel).await?;
    Ok(tokio::spawn(listen(redis.clone(), channel, forward, first)))
}

/// Subscribes at the first node that takes it, each tried within the call timeout: the one
/// Redis, or the Cluster's node first given, then its other primaries (a Cluster delivers
/// every message at every node), or the primary the Sentinels name.
async fn subscribe(redis: &Redis, channel: &str) -> Result<redis::aio::PubSub, StoreError> {
    let mut failed = StoreError("no Redis node to subscribe at".into());
    for client in redis.subscription_clients().await {
        let opened = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match redis.timed_as("subscribe", false, opened).await {
            Ok(pubsub) => return Ok(pubsub),
            Err(e) => failed = e,
        }
    }
    Err(failed)
}

/// Forwards the channel's messages; after a lost connection, subscribes again (backing off up
/// to 5 s) and tells every subscriber it may have missed some. A subscription can also die
/// without its connection ending (a half-open connection after a failover or a partition):
/// when the replica's other calls find Redis back after a failure, it subscribes again too.
async fn listen(
    redis: Redis,
    channel: String,
    forward: impl Fn(Option<String>) + Send + 'static,
    first: redis::aio::PubSub,
) {
    let mut pubsub = first;
    let mut recovered = redis.health.recovered.subscribe();
    loop {
        {
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(m) => forward(Some(m.get_payload().unwrap_or_default())),
                        None => break,
                    },
                    changed = recovered.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
        tracing::warn!(
            channel = %channel,
            "a Redis subscription may have lost notices; subscribing again"
        );
        let mut pause = Duration::from_millis(100);
        pubsub = loop {
            match subscribe(&redis, &channel).await {
                Ok(p) => break p,
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        };
        forward(None);
    }
}

impl Invalidation for RedisInvalidation {
    fn publish(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(&self.channel).arg(&*self.redis.replica);
            let _: i64 = self.redis.query("publish", &cmd).await?;
            Ok(())
        })
    }

    fn subscribe(&self) -> Subscription {
        Subscription::from_channel(self.notices.subscribe())
    }
}
