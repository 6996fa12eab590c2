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
        let channel = redis.key(name);
        let (notices, _) = broadcast::channel(64);
        let first = subscribe(&redis, &channel).await?;
        let listener = tokio::spawn(listen(
            redis.clone(),
            channel.clone(),
            notices.clone(),
            first,
        ));
        Ok(Self {
            redis,
            channel,
            notices,
            listener,
        })
    }
}

async fn subscribe(redis: &Redis, channel: &str) -> Result<redis::aio::PubSub, StoreError> {
    let connect = async {
        let mut pubsub = redis.client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    redis.timed("subscribe", connect).await
}

/// Forwards the channel's messages; after a lost connection, subscribes again (backing off up
/// to 5 s) and tells every subscriber it may have missed some. A subscription can also die
/// without its connection ending (a half-open connection after a failover or a partition):
/// when the replica's other calls find Redis back after a failure, it subscribes again too.
async fn listen(
    redis: Redis,
    channel: String,
    notices: broadcast::Sender<Heard>,
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
                        Some(_) => {
                            let _ = notices.send(Heard::Changed);
                        }
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
        let _ = notices.send(Heard::Lost);
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
