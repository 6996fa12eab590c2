//! State that several replicas will have to share, each piece behind one small trait.
//!
//! Each trait is shaped by what a networked store can do: its methods are async and fallible
//! ([`StoreError`]), and batch where a round trip matters. The in-memory implementations here
//! are the embedded default (one process, nothing else to run). Each trait's invariants are
//! written down once as a contract ([`contract`]): a set of checks any implementation must pass,
//! run against every implementation.
//!
//! - [`InboundLimits`]: the per-token inbound rate limits of `/mcp`;
//! - [`ConversationIndex`]: the conversations the server has heard of through webhooks;
//! - [`Invalidation`]: "the switchboard changed", to every cache that holds it;
//! - [`IdempotencyStore`]: the idempotency records of `send_message` and the per-key wait;
//! - [`DeliveryStore`]: what the webhooks said about messages, and the event ids received;
//! - [`ClaimStore`]: the inbound work queue, its claims and their fencing;
//! - [`RateBudget`]: the upstream requests per second of the whole fleet, its pause and its
//!   slow-down after a 429.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::RequestRate;

/// A boxed future, for traits used as `dyn`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A shared store could not answer (unreachable, too slow). What depends on it fails closed or
/// falls back, as its caller decides; it never treats the silence as an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared store is unavailable: {0}")]
pub struct StoreError(pub String);

mod budget;
mod claims;
#[cfg(test)]
pub(crate) mod contract;
mod delivery;
mod idempotency;
mod index;
mod invalidation;
mod limits;
pub mod redis_store;
mod sessions;

pub use budget::*;
pub(crate) use claims::*;
pub(crate) use delivery::*;
pub(crate) use idempotency::*;
pub(crate) use index::*;
pub(crate) use invalidation::*;
pub(crate) use limits::*;
pub(crate) use sessions::*;

/// Where the state replicas share lives: this process's memory (the default: one process,
/// nothing else to run) or Redis (`--redis-url`: several replicas).
#[derive(Clone, Debug)]
pub struct Stores {
    /// "The switchboard changed", to every cache.
    pub invalidation: std::sync::Arc<dyn Invalidation>,
    /// The per-token inbound limits of `/mcp`.
    pub inbound: std::sync::Arc<dyn InboundLimits>,
    /// The inbound work queue and its claims.
    pub(crate) claims: std::sync::Arc<dyn ClaimStore>,
    /// Who opened each MCP session.
    pub(crate) session_owners: std::sync::Arc<dyn SessionOwners>,
    /// Where sessions are kept for other replicas (rmcp's store); `None` in memory.
    session_store: Option<std::sync::Arc<dyn SessionStore>>,
    redis: Option<redis_store::Redis>,
}

use rmcp::transport::streamable_http_server::session::store::SessionStore;

impl Default for Stores {
    fn default() -> Self {
        Self::memory()
    }
}

/// How long a lease of the Redis budget may be spent.
const LEASE_WINDOW: Duration = Duration::from_millis(100);
/// Conversations the in-memory work queue keeps at most.
const CLAIMS_CAPACITY: usize = 100_000;
/// How long the work queue remembers a conversation after its last change.
const CLAIMS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a keyed send on Redis waits for another replica's hold on the key.
const KEY_WAIT: Duration = Duration::from_secs(10);

impl Stores {
    pub(crate) fn memory() -> Self {
        Self {
            invalidation: std::sync::Arc::new(MemoryInvalidation::default()),
            inbound: std::sync::Arc::new(MemoryInboundLimits::default()),
            claims: std::sync::Arc::new(MemoryClaims::new(CLAIMS_CAPACITY, CLAIMS_MAX_AGE)),
            session_owners: std::sync::Arc::new(MemorySessionOwners::new()),
            session_store: None,
            redis: None,
        }
    }

    /// Connects to Redis (the first connection must succeed) and subscribes to the app's
    /// switchboard notices.
    pub(crate) async fn redis(
        options: &redis_store::RedisOptions,
        app_id: &str,
        metrics: std::sync::Arc<crate::telemetry::Metrics>,
    ) -> Result<Self, StoreError> {
        let redis = redis_store::Redis::connect(options, app_id, metrics).await?;
        let sessions = std::sync::Arc::new(redis_store::RedisSessions::new(redis.clone()).await?);
        Ok(Self {
            session_owners: sessions.clone(),
            session_store: Some(sessions),
            invalidation: std::sync::Arc::new(
                redis_store::RedisInvalidation::new(redis.clone()).await?,
            ),
            inbound: std::sync::Arc::new(redis_store::RedisInboundLimits::new(redis.clone())),
            claims: std::sync::Arc::new(
                redis_store::RedisClaims::new(redis.clone(), CLAIMS_MAX_AGE).await?,
            ),
            redis: Some(redis),
        })
    }

    /// The upstream budget of the fleet.
    pub(crate) fn budget(&self, shape: BudgetShape) -> std::sync::Arc<dyn RateBudget> {
        match &self.redis {
            Some(r) => std::sync::Arc::new(redis_store::RedisRateBudget::new(
                r.clone(),
                shape,
                LEASE_WINDOW,
            )),
            None => std::sync::Arc::new(MemoryRateBudget::new(shape)),
        }
    }

    /// The delivery record.
    pub(crate) fn delivery(&self, limits: DeliveryLimits) -> std::sync::Arc<dyn DeliveryStore> {
        match &self.redis {
            Some(r) => std::sync::Arc::new(redis_store::RedisDeliveryStore::new(r.clone(), limits)),
            None => std::sync::Arc::new(MemoryDeliveryStore::new(limits)),
        }
    }

    /// The idempotency records, kept for `retention`; on Redis a holder's lease lapses `lease`
    /// after its last renewal (in memory, `capacity` keys at most).
    pub(crate) fn idempotency(
        &self,
        capacity: u64,
        retention: Duration,
        lease: Duration,
    ) -> std::sync::Arc<dyn IdempotencyStore> {
        match &self.redis {
            Some(r) => std::sync::Arc::new(redis_store::RedisIdempotency::new(
                r.clone(),
                lease,
                retention,
                KEY_WAIT,
            )),
            None => std::sync::Arc::new(MemoryIdempotency::new(capacity, retention)),
        }
    }

    /// The conversation index: `capacity` conversations at most, each forgotten after
    /// `max_age` without activity.
    pub(crate) fn index(
        &self,
        capacity: usize,
        max_age: Duration,
    ) -> std::sync::Arc<dyn ConversationIndex> {
        match &self.redis {
            Some(r) => std::sync::Arc::new(redis_store::RedisConversationIndex::new(
                r.clone(),
                capacity,
                max_age,
            )),
            None => std::sync::Arc::new(MemoryConversationIndex::new(capacity, max_age)),
        }
    }

    /// Where 2025-11-25 sessions are kept for other replicas; `None` in memory (rmcp's own).
    pub(crate) fn sessions(&self) -> Option<std::sync::Arc<dyn SessionStore>> {
        self.session_store.clone()
    }

    /// Where the shared state lives, for people: `memory (this process only)` or `Redis at
    /// ADDRESS` (never the password).
    pub fn describe(&self) -> String {
        match &self.redis {
            None => "memory (this process only)".to_owned(),
            Some(r) => r.address().to_owned(),
        }
    }

    /// The health of the Redis connection; `None` in memory.
    pub(crate) fn redis_status(&self) -> Option<redis_store::RedisStatus> {
        self.redis.as_ref().map(|r| r.health().status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn memory_inbound_limits_keep_the_contract() {
        contract::inbound_limits(&MemoryInboundLimits::default()).await;
    }

    #[tokio::test]
    async fn memory_conversation_index_keeps_the_contract() {
        contract::conversation_index(&MemoryConversationIndex::new(3, Duration::from_secs(3600)))
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_idempotency_keeps_the_contract() {
        let store = MemoryIdempotency::new(100, Duration::from_secs(3600));
        contract::idempotency(&store).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_delivery_store_keeps_the_contract() {
        let store = MemoryDeliveryStore::new(DeliveryLimits {
            failures: 2,
            event_ids: 3,
            max_age: Duration::from_secs(2),
            ..DeliveryLimits::default()
        });
        contract::delivery(&store).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_rate_budget_keeps_the_contract() {
        let budget = MemoryRateBudget::new(BudgetShape {
            rate: 10.0,
            burst: 3,
            min_rate_share: 0.1,
        });
        contract::rate_budget(&budget).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_claims_keep_the_contract() {
        contract::claims(&MemoryClaims::new(100, Duration::from_secs(3600))).await;
    }

    #[tokio::test]
    async fn memory_session_owners_keep_the_contract() {
        let owners = MemorySessionOwners::new();
        contract::session_owners(&owners, &owners).await;
    }

    #[tokio::test]
    async fn memory_invalidation_keeps_the_contract() {
        contract::invalidation(&MemoryInvalidation::default()).await;
    }

    /// Each store on a real `redis-server` of the test's own.
    mod on_redis {
        use super::*;
        use crate::shared::redis_store::test_server::RedisServer;
        use crate::shared::redis_store::*;

        /// Every store's contract on `redis`; the sessions' with `other`, a second replica's
        /// connection to the same Redis.
        async fn every_contract(redis: &Redis, other: Redis) {
            contract::inbound_limits(&RedisInboundLimits::new(redis.clone())).await;
            contract::conversation_index(&RedisConversationIndex::new(
                redis.clone(),
                3,
                Duration::from_secs(3600),
            ))
            .await;
            contract::idempotency(&RedisIdempotency::new(
                redis.clone(),
                Duration::from_secs(5),
                Duration::from_secs(60),
                Duration::from_secs(5),
            ))
            .await;
            contract::delivery(&RedisDeliveryStore::new(
                redis.clone(),
                DeliveryLimits {
                    failures: 2,
                    event_ids: 3,
                    max_age: Duration::from_secs(2),
                    ..DeliveryLimits::default()
                },
            ))
            .await;
            let shape = BudgetShape {
                rate: 10.0,
                burst: 3,
                min_rate_share: 0.1,
            };
            contract::rate_budget(&RedisRateBudget::new(redis.clone(), shape, Duration::ZERO))
                .await;
            contract::claims(
                &RedisClaims::new(redis.clone(), Duration::from_secs(3600))
                    .await
                    .expect("subscribes"),
            )
            .await;
            contract::invalidation(
                &RedisInvalidation::new(redis.clone())
                    .await
                    .expect("subscribes"),
            )
            .await;
            contract::session_owners(
                &RedisSessions::new(redis.clone()).await.expect("subscribes"),
                &RedisSessions::new(other).await.expect("subscribes"),
            )
            .await;
        }

        async fn connect(server: &RedisServer, app: &str) -> Redis {
            connect_to(&server.url(), app).await
        }

        /// A connection for the app `app` to the Redis (or Cluster) at `url`.
        async fn connect_to(url: &str, app: &str) -> Redis {
            let metrics = crate::telemetry::Telemetry::local().metrics.clone();
            Redis::connect(&RedisOptions::new(url), app, metrics)
                .await
                .expect("connects")
        }

        #[tokio::test]
        async fn redis_stores_keep_the_contracts() {
            let Some(server) = RedisServer::start() else {
                return;
            };
            let (redis, other) = (
                connect(&server, "app1").await,
                connect(&server, "app1").await,
            );
            every_contract(&redis, other).await;
        }

        /// Every store on a real three-node Redis Cluster, reached through a node that does
        /// not own the app's slot: the client follows `MOVED` and every script runs where the
        /// app's keys are.
        #[tokio::test]
        async fn cluster_stores_keep_the_contracts() {
            let Some(cluster) = test_server::RedisCluster::start() else {
                return;
            };
            let url = cluster.url_not_owning("app1");
            let (redis, other) = (
                connect_to(&url, "app1").await,
                connect_to(&url, "app1").await,
            );
            every_contract(&redis, other).await;
            assert!(
                !redis.health().is_degraded(),
                "{:?}",
                redis.health().status()
            );
        }

        /// After a failover behind one address, the subscriptions follow the address too: a
        /// notice published on the new primary reaches a subscriber that started on the old.
        #[tokio::test]
        async fn after_a_failover_the_subscriptions_follow_the_address() {
            let Some(mut server) = RedisServer::start() else {
                return;
            };
            let bus = RedisInvalidation::new(connect(&server, "app9").await)
                .await
                .expect("subscribes");
            let mut heard = bus.subscribe();
            server.demote();
            let _old = server.fail_over();
            let publisher = RedisInvalidation::new(connect(&server, "app9").await)
                .await
                .expect("subscribes");
            let reached = tokio::time::timeout(Duration::from_secs(15), async {
                loop {
                    publisher.publish().await.expect("publish");
                    if let Ok(Heard::Changed) =
                        tokio::time::timeout(Duration::from_millis(200), heard.next()).await
                    {
                        return;
                    }
                }
            })
            .await;
            assert!(
                reached.is_ok(),
                "the subscription stayed with the old primary"
            );
        }

        /// On a Cluster, the subscriptions outlive the node they started on: when it stops,
        /// they move to another node, where the Cluster's notices arrive too.
        #[tokio::test]
        async fn on_a_cluster_the_subscriptions_outlive_the_node_they_started_on() {
            let Some(mut cluster) = test_server::RedisCluster::start() else {
                return;
            };
            let first = cluster.url_not_owning("app8");
            let redis = connect_to(&first, "app8").await;
            let bus = RedisInvalidation::new(redis.clone())
                .await
                .expect("subscribes");
            let mut heard = bus.subscribe();
            cluster.kill_node(&first);
            let reached = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    let _ = bus.publish().await;
                    if let Ok(Heard::Changed) =
                        tokio::time::timeout(Duration::from_millis(200), heard.next()).await
                    {
                        return;
                    }
                }
            })
            .await;
            assert!(reached.is_ok(), "the subscription died with its node");
        }

        /// Two replicas' stores on one Redis: what one learns, the other obeys.
        #[tokio::test]
        async fn replicas_share_the_pause_the_slow_down_and_the_inbound_buckets() {
            let Some(server) = RedisServer::start() else {
                return;
            };
            let (a, b) = (
                connect(&server, "app3").await,
                connect(&server, "app3").await,
            );
            let shape = BudgetShape {
                rate: 10.0,
                burst: 3,
                min_rate_share: 0.1,
            };
            let window = Duration::from_millis(100);
            let (budget_a, budget_b) = (
                RedisRateBudget::new(a.clone(), shape, window),
                RedisRateBudget::new(b.clone(), shape, window),
            );
            assert_eq!(budget_b.grant(1).await.expect("grant").granted, 1);
            budget_a
                .throttled(Some(Duration::from_secs(2)))
                .await
                .expect("throttled");
            let g = budget_b.grant(1).await.expect("grant");
            assert!(
                g.granted == 0 && g.paused && g.wait > Duration::from_secs(1),
                "A's Retry-After pauses B: {g:?}"
            );
            tokio::time::sleep(Duration::from_millis(2100)).await;
            assert_eq!(budget_b.grant(1).await.expect("grant").granted, 1);
            assert!(
                (budget_b.rate() - 5.0).abs() < 1e-9,
                "A's 429 halved B's rate: {}",
                budget_b.rate()
            );
            // A's reloaded rate_limit is the fleet's: B's next grant learns it.
            assert_eq!(budget_a.reshape(4.0, 2).await.expect("reshape"), (4.0, 2));
            tokio::time::sleep(Duration::from_millis(600)).await;
            budget_b.grant(1).await.expect("grant");
            assert!(
                budget_b.rate() <= 4.0,
                "B spends the fleet's new rate: {}",
                budget_b.rate()
            );
            let rate = RequestRate {
                per_second: 0.5,
                burst: 2,
            };
            let (limits_a, limits_b) = (RedisInboundLimits::new(a), RedisInboundLimits::new(b));
            assert_eq!(limits_a.take("bot", rate).await, Ok(None));
            assert_eq!(limits_b.take("bot", rate).await, Ok(None));
            assert!(
                matches!(limits_a.take("bot", rate).await, Ok(Some(_))),
                "one token's bucket across replicas"
            );
        }

        /// Pub/sub loses what is published while the connection is down: after it comes back,
        /// every subscriber is told to drop everything.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_lost_subscription_tells_every_subscriber_to_drop_everything() {
            let Some(mut server) = RedisServer::start() else {
                return;
            };
            let redis = connect(&server, "app4").await;
            let bus = RedisInvalidation::new(redis).await.expect("subscribes");
            let mut heard = bus.subscribe();
            tokio::task::block_in_place(|| server.restart());
            let next = tokio::time::timeout(Duration::from_secs(10), heard.next()).await;
            assert_eq!(next, Ok(Heard::Lost));
            // Subscribed again: a publish is heard. (The first commands after the restart may
            // meet the old connection's end, and the return from degraded mode subscribes once
            // more, with another `Lost`: drop-everything notices are never wrong.)
            let heard_again = async {
                loop {
                    let _ = bus.publish().await;
                    match tokio::time::timeout(Duration::from_millis(200), heard.next()).await {
                        Ok(Heard::Changed) => return,
                        Ok(Heard::Lost) | Err(_) => {}
                        Ok(Heard::Closed) => panic!("the subscription closed"),
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(10), heard_again)
                .await
                .expect("subscribed again");
        }

        /// An acquire this replica gave up on (Redis hung) must not leave a phantom holder
        /// once Redis runs it after all.
        #[tokio::test]
        async fn an_acquire_given_up_on_leaves_no_holder_behind() {
            let Some(server) = RedisServer::start() else {
                return;
            };
            let redis = connect(&server, "app5").await;
            let store = |wait| {
                RedisIdempotency::new(
                    redis.clone(),
                    Duration::from_secs(30),
                    Duration::from_secs(60),
                    wait,
                )
            };
            // The script loaded, as on any replica that has served a keyed send.
            drop(store(Duration::ZERO).acquire("conv", "warm", 1).await);
            server.freeze(true);
            let gave_up = store(Duration::ZERO).acquire("conv", "k", 1).await;
            assert!(
                matches!(gave_up, Err(AcquireError::Store(_))),
                "a hung Redis is an error"
            );
            server.freeze(false);
            // Redis now runs the acquire it had queued, then the release that followed it.
            let next = tokio::time::timeout(
                Duration::from_secs(10),
                store(Duration::from_secs(5)).acquire("conv", "k", 1),
            )
            .await
            .expect("not held for the 30 s lease");
            assert!(next.is_ok(), "the key is free");
        }

        #[tokio::test]
        async fn a_key_held_elsewhere_answers_held_with_when_it_lapses_at_the_latest() {
            let Some(server) = RedisServer::start() else {
                return;
            };
            let redis = connect(&server, "app2").await;
            let lease = Duration::from_secs(3);
            let store =
                |wait| RedisIdempotency::new(redis.clone(), lease, Duration::from_secs(60), wait);
            let (first, second) = (store(Duration::ZERO), store(Duration::from_millis(100)));
            let mut held = first.acquire("conv", "k", 1).await.expect("acquire");
            held.set(SendRecord {
                message: 1,
                state: SendState::Uncertain,
            })
            .await
            .expect("set");
            match second.acquire("conv", "k", 1).await {
                Err(AcquireError::Held { retry_after }) => assert!(
                    retry_after > Duration::ZERO && retry_after <= lease,
                    "{retry_after:?}"
                ),
                Err(e) => panic!("a held key answers Held, not {e}"),
                Ok(l) => panic!("a held key is not handed out: {:?}", l.record()),
            }
            drop(held);
            let next = store(Duration::from_secs(5))
                .acquire("conv", "k", 1)
                .await
                .expect("a released key is free");
            assert_eq!(
                next.record().state,
                SendState::Uncertain,
                "the next holder reads what the last one set, and checks before sending"
            );
        }
    }
}
