//! The shared-state traits on Redis (or Valkey), for several replicas of one app.
//!
//! Every key of an app starts with `zmcp:{<app id>}:`: the braces are a Redis Cluster hash tag,
//! so every key a script touches sits in one slot and a Cluster can run it (an app's state then
//! lives on one shard; a Cluster spreads several apps, not one). Every decision that must hold
//! across replicas (a budget grant, a key's owner, an event's first sight) is one Lua script
//! that reads the time from the Redis server (`TIME`), so replica clocks may differ.
//!
//! Each call is bounded by [`RedisOptions::timeout`]; a call that fails or times out is a
//! [`StoreError`], counted, and puts the connection in the degraded mode that `/readyz` and
//! `mcp.server.degraded` report, until a write succeeds again: the heartbeat (every second, a
//! write) is what clears it, so a Redis that still answers reads but refuses writes (`READONLY`)
//! stays reported. The heartbeat also keeps the count of live replicas, which the budget's
//! fallback divides by.
//!
//! Managed Redis fails in ways a reconnect to the same socket does not mend, so the connection
//! is replaced (a new one opened to the address as it resolves now, the subscriptions opened
//! again) when Redis says it is no longer the primary (`READONLY`, `MASTERDOWN`: a failover
//! behind one address) and after [`TIMEOUTS_TO_REPLACE`] calls in a row time out (a connection
//! gone silent without a close: a dead node, a dropped NAT entry), once a new connection
//! answers; [`REPLACE_GAP`] apart at first, further apart while replacements follow each other. A Redis Cluster is recognised at start (`INFO cluster`) from any of its
//! nodes' plain `redis://` URL, and then spoken to with a cluster-aware client that follows
//! `MOVED` and `ASK`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisFuture, Script};
use tokio::time::Instant;

use super::StoreError;
use crate::telemetry::{Metrics, kv};

mod budget;
mod claims;
mod delivery;
mod idempotency;
mod index;
mod invalidation;
mod limits;
mod sentinel;
mod sessions;

pub(crate) use budget::RedisRateBudget;
pub(crate) use claims::RedisClaims;
pub(crate) use delivery::RedisDeliveryStore;
pub(crate) use idempotency::RedisIdempotency;
pub(crate) use index::RedisConversationIndex;
pub(crate) use invalidation::RedisInvalidation;
pub(crate) use limits::RedisInboundLimits;
pub(crate) use sessions::RedisSessions;

/// How the server talks to Redis.
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://`, `rediss://` or `unix://` (see the `redis` crate for the URL forms). It may
    /// carry a password: never logged.
    pub(crate) url: String,
    /// Longest wait for one Redis call (connecting included) before it counts as failed.
    pub(crate) timeout: Duration,
    /// The replica count the budget's fallback divides by while Redis is down; `None` uses the
    /// live replicas last seen through the heartbeat.
    pub replicas: Option<u32>,
}

impl RedisOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: Duration::from_millis(500),
            replicas: None,
        }
    }
}

/// Checks a Redis URL's form (not that Redis answers there): `redis://[:PASSWORD@]HOST[:PORT][/DB]`,
/// `rediss://…` (TLS), `unix:///path/to/redis.sock` or `redis+sentinel://…/SERVICE`. The error never repeats the URL, which may
/// carry a password.
pub fn check_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    if scheme == "redis+sentinel" {
        return sentinel::SentinelUrl::parse(url).map(|_| url.to_owned());
    }
    if !["redis", "rediss", "unix", "redis+unix"].contains(&scheme) {
        return Err(
            "expected redis://[:PASSWORD@]HOST[:PORT][/DB], rediss://… (TLS), unix:///path/to/redis.sock or redis+sentinel://[:PASSWORD@]HOST[:PORT][,…]/SERVICE[/DB]".into(),
        );
    }
    redis::Client::open(url)
        .map(|_| url.to_owned())
        .map_err(|e| format!("not a usable Redis URL ({e})"))
}

/// Timeouts in a row after which the connection is replaced.
const TIMEOUTS_TO_REPLACE: u32 = 2;
/// The shortest time between two replacements of the connection; it doubles with each
/// replacement that follows within [`REPLACE_CALM`], up to [`REPLACE_GAP_MAX`].
const REPLACE_GAP: Duration = Duration::from_secs(1);
const REPLACE_GAP_MAX: Duration = Duration::from_secs(30);
/// A replacement this long after the last one starts again from [`REPLACE_GAP`].
const REPLACE_CALM: Duration = Duration::from_secs(60);

/// A connection to one Redis (reconnecting by itself when its socket closes) or to a Cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How to open a new connection, and the replacement's bookkeeping.
struct Link {
    open: Opener,
    /// Calls in a row that timed out.
    timeouts: AtomicU32,
    replacing: AtomicBool,
    /// The last replacement, and the gap before the next may start.
    pace: Mutex<(Option<Instant>, Duration)>,
}

enum Opener {
    Single(redis::Client, ConnectionManagerConfig),
    Cluster(ClusterClient),
    /// The Sentinels are asked for the primary each time.
    Sentinel(
        tokio::sync::Mutex<redis::sentinel::SentinelClient>,
        ConnectionManagerConfig,
    ),
}

impl Opener {
    async fn open(&self) -> redis::RedisResult<Conn> {
        Ok(match self {
            Opener::Single(client, config) => Conn::Single(
                ConnectionManager::new_with_config(client.clone(), config.clone()).await?,
            ),
            Opener::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
            Opener::Sentinel(sentinels, config) => {
                let primary = sentinels.lock().await.async_get_client().await?;
                Conn::Single(ConnectionManager::new_with_config(primary, config.clone()).await?)
            }
        })
    }
}

/// A connection to Redis shared by every store of one replica (cheap to clone).
#[derive(Clone)]
pub(crate) struct Redis {
    /// Replaced whole when it must be: every clone uses the current one.
    conn: Arc<ArcSwap<Conn>>,
    link: Arc<Link>,
    /// For the subscriptions (one node of a Cluster: its messages reach every node).
    client: redis::Client,
    prefix: Arc<str>,
    timeout: Duration,
    health: Arc<RedisHealth>,
    metrics: Arc<Metrics>,
    /// This replica's name in the heartbeat set.
    replica: Arc<str>,
    /// Where Redis is, for people: `Redis at host:port` (or the socket's path), or `a Redis
    /// Cluster, first reached at host:port`; never the password.
    at: Arc<str>,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &"[redacted]")
            .field("timeout", &self.timeout)
            .field("replicas", &self.replicas)
            .finish()
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never shown.
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What the replica knows of its Redis: whether the last call failed (degraded mode), why, and
/// how many replicas were live at the last heartbeat.
#[derive(Debug)]
pub(crate) struct RedisHealth {
    degraded: AtomicBool,
    reason: Mutex<String>,
    replicas: AtomicU32,
    fixed_replicas: Option<u32>,
    /// Counts the returns from degraded mode and the replacements of the connection: what a
    /// connection of its own (the pub/sub subscription) may have silently lost meanwhile must
    /// be set up again.
    recovered: tokio::sync::watch::Sender<u64>,
}

/// A snapshot of [`RedisHealth`] for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedisStatus {
    pub(crate) degraded: bool,
    /// Why, when degraded (no secret: the URL is never part of it).
    pub(crate) reason: Option<String>,
    /// The replica count the budget's fallback divides by.
    pub(crate) replicas: u32,
}

impl RedisHealth {
    fn new(fixed_replicas: Option<u32>) -> Self {
        Self {
            degraded: AtomicBool::new(false),
            reason: Mutex::new(String::new()),
            replicas: AtomicU32::new(fixed_replicas.unwrap_or(1).max(1)),
            fixed_replicas,
            recovered: tokio::sync::watch::Sender::new(0),
        }
    }

    pub(crate) fn status(&self) -> RedisStatus {
        let degraded = self.degraded.load(Ordering::Relaxed);
        RedisStatus {
            degraded,
            reason: degraded.then(|| self.reason.lock().map(|r| r.clone()).unwrap_or_default()),
            replicas: self.replicas(),
        }
    }

    /// True while the last call failed (the heartbeat probes every second).
    pub(crate) fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// The replica count the budget's fallback divides by: `--replicas` when given, else the
    /// live replicas at the last heartbeat (at least 1).
    pub(crate) fn replicas(&self) -> u32 {
        self.fixed_replicas
            .unwrap_or_else(|| self.replicas.load(Ordering::Relaxed))
            .max(1)
    }
}

/// Reads a script's reply of mixed numbers and text.
fn number(v: &redis::Value) -> f64 {
    match v {
        redis::Value::Int(n) => *n as f64,
        redis::Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0),
        redis::Value::SimpleString(s) => s.parse().unwrap_or(0.0),
        redis::Value::Double(d) => *d,
        _ => 0.0,
    }
}

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The heartbeat: this replica's last beat (server time, ms) in a sorted set; beats older than
/// 5 s are dropped; answers how many replicas are live.
static HEARTBEAT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
",
    )
});

/// A replica is live while its last heartbeat is younger than this.
const LIVE_FOR: Duration = Duration::from_secs(5);
const BEAT_EVERY: Duration = Duration::from_secs(1);

impl Redis {
    /// Connects for the SunCo app `app_id` (its state is kept apart from other apps' under
    /// `zmcp:{<app id>}:`). The first connection must succeed: a replica told to share state
    /// never starts alone. Warns when Redis would evict keys; starts the heartbeat.
    pub(crate) async fn connect(
        options: &RedisOptions,
        app_id: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let sentinels = match options.url.starts_with(sentinel::SCHEME) {
            true => Some(
                sentinel::SentinelUrl::parse(&options.url)
                    .map_err(|e| StoreError(format!("the Redis URL is not usable: {e}")))?,
            ),
            false => None,
        };
        let (client, at, sentinel_client) = match &sentinels {
            Some(url) => {
                let mut asked = url
                    .client()
                    .map_err(|e| StoreError(format!("the Redis URL is not usable: {e}")))?;
                let primary = tokio::time::timeout(options.timeout * 4, asked.async_get_client())
                    .await
                    .map_err(|_| StoreError(format!("the Sentinels of {} did not name a primary in time; check --redis-url / ZENDESK_MCP_REDIS_URL", url.describe())))?
                    .map_err(|e| StoreError(format!("the Sentinels of {} name no primary ({e}); check --redis-url / ZENDESK_MCP_REDIS_URL", url.describe())))?;
                (primary, url.describe(), Some(asked))
            }
            None => {
                let client = redis::Client::open(options.url.as_str())
                    .map_err(|e| StoreError(format!("the Redis URL is not usable: {e}")))?;
                // Where, without the password the URL may carry.
                let at = client.get_connection_info().addr().to_string();
                (client, at, None)
            }
        };
        let refused = |why: String| {
            StoreError(format!(
                "cannot use Redis at {at} ({why}); check --redis-url / ZENDESK_MCP_REDIS_URL: a replica does not start without its shared store"
            ))
        };
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.timeout))
            .set_connection_timeout(Some(options.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let mut first = tokio::time::timeout(
            options.timeout * 4,
            ConnectionManager::new_with_config(client.clone(), config.clone()),
        )
        .await
        .map_err(|_| refused("no answer in time".into()))?
        .map_err(|e| refused(e.to_string()))?;
        // A connection is not yet an answer (a password may be missing): one PING.
        tokio::time::timeout(
            options.timeout * 4,
            redis::cmd("PING").query_async::<String>(&mut first),
        )
        .await
        .map_err(|_| refused("no answer to PING in time".into()))?
        .map_err(|e| refused(e.to_string()))?;
        let (conn, open, described) = if is_cluster(&mut first, options.timeout * 4).await {
            let cluster = ClusterClientBuilder::new(vec![options.url.as_str()])
                .connection_timeout(options.timeout)
                .response_timeout(options.timeout)
                .retries(2)
                .build()
                .map_err(|e| refused(format!("a Redis Cluster, but: {e}")))?;
            let conn = tokio::time::timeout(options.timeout * 4, cluster.get_async_connection())
                .await
                .map_err(|_| refused("the Cluster's nodes did not answer in time".into()))?
                .map_err(|e| refused(format!("a Redis Cluster, but: {e}")))?;
            tracing::info!(at = %at, "Redis is a Cluster: following its slots");
            let described = format!("a Redis Cluster, first reached at {at}");
            (Conn::Cluster(conn), Opener::Cluster(cluster), described)
        } else if let Some(asked) = sentinel_client {
            let opener = Opener::Sentinel(tokio::sync::Mutex::new(asked), config);
            (Conn::Single(first), opener, format!("Redis, {at}"))
        } else {
            let described = format!("Redis at {at}");
            (
                Conn::Single(first),
                Opener::Single(client.clone(), config),
                described,
            )
        };
        let replica: Arc<str> = format!(
            "{}-{}-{:08x}",
            hostname(),
            std::process::id(),
            rand::random::<u32>()
        )
        .into();
        let redis = Self {
            conn: Arc::new(ArcSwap::from_pointee(conn)),
            link: Arc::new(Link {
                open,
                timeouts: AtomicU32::new(0),
                replacing: AtomicBool::new(false),
                pace: Mutex::new((None, REPLACE_GAP)),
            }),
            client,
            prefix: format!("zmcp:{{{app_id}}}:").into(),
            timeout: options.timeout,
            health: Arc::new(RedisHealth::new(options.replicas)),
            metrics,
            replica,
            at: described.into(),
        };
        redis.check_eviction().await;
        redis.beat().await;
        let weak = redis.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(BEAT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                // Ends with the last store using this connection.
                if Arc::strong_count(&weak.health) <= 1 {
                    return;
                }
                weak.beat().await;
            }
        });
        Ok(redis)
    }

    /// Where Redis is, for people (never the password).
    pub(crate) fn address(&self) -> &str {
        &self.at
    }

    pub(crate) fn health(&self) -> &Arc<RedisHealth> {
        &self.health
    }

    /// Fails at once while Redis is known to be down, for calls that are only a shortcut and
    /// must not make a caller wait (the heartbeat finds Redis back).
    fn unless_degraded(&self) -> Result<(), StoreError> {
        if self.health.is_degraded() {
            return Err(StoreError("Redis is unreachable (degraded mode)".into()));
        }
        Ok(())
    }

    /// `zmcp:{<app>}:<name>`.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The heartbeat: a write, so its success is what ends degraded mode.
    async fn beat(&self) {
        let mut s = HEARTBEAT.key(self.key("replicas"));
        s.arg(&*self.replica).arg(LIVE_FOR.as_millis() as u64);
        if let Ok(n) = self.run::<u32>("heartbeat", &s).await {
            if self.health.fixed_replicas.is_none() {
                self.health.replicas.store(n.max(1), Ordering::Relaxed);
            }
            if self.health.degraded.swap(false, Ordering::Relaxed) {
                tracing::info!("Redis takes writes again: shared state is back");
                self.metrics.degraded.record(0, &[kv("reason", "redis")]);
                self.health.recovered.send_modify(|n| *n += 1);
            }
        }
    }

    /// Opens a new connection in the background and, once it answers a `PING`, puts it in place
    /// of the current one and has the subscriptions opened again; unless one is being opened,
    /// or the gap since the last replacement (1 s, doubling up to 30 s while they follow each
    /// other) has not passed. A new connection that does not answer either leaves the current
    /// one: Redis itself is slow or down, which no connection mends.
    fn replace_connection(&self, why: &str) {
        {
            let Ok(mut pace) = self.link.pace.lock() else {
                return;
            };
            let (last, gap) = *pace;
            let gap = match last.map(|at| at.elapsed()) {
                Some(since) if since < gap => return,
                Some(since) if since < REPLACE_CALM => (gap * 2).min(REPLACE_GAP_MAX),
                _ => REPLACE_GAP,
            };
            if self.link.replacing.swap(true, Ordering::AcqRel) {
                return;
            }
            *pace = (Some(Instant::now()), gap);
        }
        tracing::warn!(reason = why, "replacing the Redis connection");
        let this = self.clone();
        tokio::spawn(async move {
            let fresh = async {
                let mut fresh = this.link.open.open().await?;
                redis::cmd("PING").query_async::<String>(&mut fresh).await?;
                Ok::<_, redis::RedisError>(fresh)
            };
            match tokio::time::timeout(this.timeout * 4, fresh).await {
                Ok(Ok(fresh)) => {
                    this.conn.store(Arc::new(fresh));
                    this.link.timeouts.store(0, Ordering::Relaxed);
                    this.health.recovered.send_modify(|n| *n += 1);
                    tracing::info!("a new Redis connection is in place");
                }
                Ok(Err(e)) => tracing::warn!(
                    "a new Redis connection fails too ({e}); keeping the current one, the next failure tries again"
                ),
                Err(_) => tracing::warn!(
                    "a new Redis connection does not answer in time either; keeping the current one, the next failure tries again"
                ),
            }
            this.link.replacing.store(false, Ordering::Release);
        });
    }

    /// A Redis that evicts keys under memory pressure drops idempotency records and events
    /// silently: say so at start.
    async fn check_eviction(&self) {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory-policy");
        // Outside the health accounting: managed Redis often refuses CONFIG, which says nothing
        // of whether the shared state works.
        let mut conn = self.current();
        let answer = tokio::time::timeout(self.timeout, cmd.query_async::<Vec<String>>(&mut conn))
            .await
            .map_err(|_| "no answer in time".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match answer {
            Ok(pair) => {
                let policy = pair.get(1).map(String::as_str).unwrap_or("");
                if policy != "noeviction" {
                    tracing::warn!(
                        policy,
                        "Redis evicts keys under memory pressure (maxmemory-policy {policy}): idempotency records and delivery events may be lost silently; set maxmemory-policy noeviction"
                    );
                }
            }
            Err(e) => tracing::info!(
                "cannot read Redis's maxmemory-policy ({e}); make sure it is noeviction"
            ),
        }
    }

    /// Where a subscription may be opened, in order: the Redis given; on a Cluster, then
    /// every primary the Cluster says is up now (with the credentials and TLS of the URL given);
    /// behind Sentinel, the primary the Sentinels name now.
    async fn subscription_clients(&self) -> Vec<redis::Client> {
        if let Opener::Sentinel(sentinels, _) = &self.link.open {
            // The primary the Sentinels name now.
            let asked = tokio::time::timeout(self.timeout, async {
                sentinels.lock().await.async_get_client().await
            });
            return match asked.await {
                Ok(Ok(primary)) => vec![primary],
                _ => vec![],
            };
        }
        let mut clients = vec![self.client.clone()];
        if !matches!(self.link.open, Opener::Cluster(_)) {
            return clients;
        }
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("NODES");
        let mut conn = self.current();
        let Ok(Ok(nodes)) =
            tokio::time::timeout(self.timeout, cmd.query_async::<String>(&mut conn)).await
        else {
            return clients;
        };
        let given = self.client.get_connection_info();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(address), Some(flags)) = (fields.get(1), fields.get(2)) else {
                continue;
            };
            if !flags.contains("master") || flags.contains("fail") {
                continue;
            }
            let address = address.split(['@', ',']).next().unwrap_or_default();
            let Some((host, port)) = address
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            else {
                continue;
            };
            let addr = match given.addr() {
                redis::ConnectionAddr::TcpTls {
                    insecure,
                    tls_params,
                    ..
                } => redis::ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                _ => redis::ConnectionAddr::Tcp(host, port),
            };
            if let Ok(client) = redis::Client::open(given.clone().set_addr(addr)) {
                clients.push(client);
            }
        }
        clients
    }

    /// The connection in place now.
    fn current(&self) -> Conn {
        Conn::clone(&self.conn.load())
    }

    /// Runs a script, bounded by the timeout, and records the round trip.
    async fn run<T: FromRedisValue>(
        &self,
        operation: &'static str,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut conn = self.current();
        self.timed(operation, script.invoke_async(&mut conn)).await
    }

    async fn query<T: FromRedisValue>(
        &self,
        operation: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.current();
        self.timed(operation, cmd.query_async(&mut conn)).await
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        self.timed_as(operation, true, call).await
    }

    /// [`Redis::timed`]; a timeout counts toward replacing the connection only when `counted`
    /// (a subscription opens connections of its own: its timeouts say nothing of this one).
    async fn timed_as<T>(
        &self,
        operation: &'static str,
        counted: bool,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if no_longer_primary(&e) {
                    self.replace_connection("Redis answers as a replica (READONLY/MASTERDOWN): a failover moved the primary");
                } else if (e.is_io_error() || e.is_connection_dropped())
                    && matches!(self.link.open, Opener::Sentinel(..))
                {
                    // The primary's address itself may be stale: the Sentinels know the new one.
                    self.replace_connection("the primary cannot be reached: asking the Sentinels");
                }
                Err((error_type(&e), format!("Redis failed {operation}: {e}")))
            }
            Err(_) => Err((
                "timeout",
                format!(
                    "Redis did not answer {operation} within {} ms",
                    self.timeout.as_millis()
                ),
            )),
        };
        match &result {
            _ if !counted => {}
            Err(("timeout", _)) => {
                let row = self.link.timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                if row >= TIMEOUTS_TO_REPLACE {
                    self.replace_connection(
                        "calls in a row timed out: the connection may have gone silent",
                    );
                }
            }
            _ => self.link.timeouts.store(0, Ordering::Relaxed),
        }
        let elapsed = started.elapsed().as_secs_f64();
        let m = &self.metrics;
        match result {
            Ok(v) => {
                m.store_duration.record(
                    elapsed,
                    &[
                        kv("db.system.name", "redis"),
                        kv("db.operation.name", operation),
                    ],
                );
                Ok(v)
            }
            Err((kind, message)) => {
                m.store_duration.record(
                    elapsed,
                    &[
                        kv("db.system.name", "redis"),
                        kv("db.operation.name", operation),
                        kv("error.type", kind),
                    ],
                );
                if let Ok(mut r) = self.health.reason.lock() {
                    r.clone_from(&message);
                }
                if !self.health.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "{message}: degraded mode (keyed sends and webhooks refused, the budget split across {} replicas) until Redis answers",
                        self.health.replicas()
                    );
                    m.degraded.record(1, &[kv("reason", "redis")]);
                }
                Err(StoreError(message))
            }
        }
    }
}

/// Whether Redis says it is not the primary any more: the address now leads elsewhere (a
/// failover behind one name), which only a new connection reaches.
fn no_longer_primary(e: &redis::RedisError) -> bool {
    use redis::ServerErrorKind as K;
    matches!(
        e.kind(),
        redis::ErrorKind::Server(K::ReadOnly | K::MasterDown)
    ) || ["READONLY", "MASTERDOWN"]
        .iter()
        .any(|code| e.to_string().contains(code))
}

/// Whether the Redis behind `conn` is a Cluster node (`INFO cluster`); a Redis that refuses
/// `INFO` is taken for a single one.
async fn is_cluster(conn: &mut ConnectionManager, within: Duration) -> bool {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("cluster");
    matches!(
        tokio::time::timeout(within, cmd.query_async::<String>(conn)).await,
        Ok(Ok(info)) if info.lines().any(|l| l.trim() == "cluster_enabled:1")
    )
}

fn error_type(e: &redis::RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_io_error() || e.is_connection_dropped() {
        "io"
    } else {
        "server"
    }
}

/// This machine's name (`HOSTNAME`, else the kernel's), for naming a replica.
pub(crate) fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "replica".to_owned())
}

/// A `redis-server` of its own for tests: started on a Unix socket in a fresh folder under the
/// system's temporary folder (no TCP port), stopped and removed on drop.
#[cfg(any(test, feature = "test-support"))]
pub mod test_server {
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    static NEXT: AtomicU32 = AtomicU32::new(0);

    pub struct RedisServer {
        dir: PathBuf,
        child: Option<Child>,
        persistent: bool,
    }

    impl RedisServer {
        /// A server without persistence; `None` (with a note on stderr) when `redis-server` is
        /// not installed, unless `CI` is set: then a missing server fails the test.
        pub fn start() -> Option<Self> {
            Self::start_with(false)
        }

        /// A server with append-only persistence (`appendfsync always`), as production runs
        /// it: a restart keeps what was written.
        pub fn start_persistent() -> Option<Self> {
            Self::start_with(true)
        }

        fn start_with(persistent: bool) -> Option<Self> {
            if !installed() {
                return None;
            }
            let mut server = Self {
                dir: fresh_dir("zr"),
                child: None,
                persistent,
            };
            server.launch();
            Some(server)
        }

        fn launch(&mut self) {
            let socket = self.socket();
            let _ = std::fs::remove_file(&socket);
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", "0", "--unixsocket"])
                .arg(&socket)
                .args(["--unixsocketperm", "700", "--save", ""])
                .arg("--dir")
                .arg(&self.dir)
                .args(["--maxmemory-policy", "noeviction"]);
            if self.persistent {
                cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
            } else {
                cmd.args(["--appendonly", "no"]);
            }
            let child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            self.child = Some(child);
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while !socket.exists() {
                assert!(
                    std::time::Instant::now() < until,
                    "redis-server did not open its socket"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        fn socket(&self) -> PathBuf {
            self.dir.join("r.sock")
        }

        /// `unix://…/r.sock` (with `?protocol=resp3` for the callers that want it).
        pub fn url(&self) -> String {
            format!("unix://{}", self.socket().display())
        }

        /// Kills the server (SIGKILL: nothing flushed beyond what `appendfsync always` wrote).
        pub fn kill(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        /// Freezes the server (SIGSTOP) or thaws it (`false`, SIGCONT): a Redis that hangs
        /// with its connections open.
        pub fn freeze(&self, frozen: bool) {
            if let Some(child) = &self.child {
                let signal = if frozen { "-STOP" } else { "-CONT" };
                let _ = Command::new("kill")
                    .args([signal, &child.id().to_string()])
                    .status();
            }
        }

        /// Makes the server a replica of a primary that is not there (`REPLICAOF 127.0.0.1 1`):
        /// it answers reads and refuses writes with `READONLY`, as an old primary does after a
        /// failover.
        pub fn demote(&self) {
            let status = Command::new("redis-cli")
                .arg("-s")
                .arg(self.socket())
                .args(["REPLICAOF", "127.0.0.1", "1"])
                .stdout(Stdio::null())
                .status()
                .expect("redis-cli runs");
            assert!(status.success(), "REPLICAOF");
        }

        /// A failover behind one address: a new, empty server takes this one's socket path, so
        /// new connections reach it while those already open stay with the old server (as after
        /// a DNS name moved to a new primary). `self` is the new server from then on; the old
        /// one, still running, is returned (to freeze, say).
        pub fn fail_over(&mut self) -> RedisServer {
            let mut new = Self::start_with(self.persistent).expect("redis-server starts");
            std::fs::rename(new.socket(), self.socket()).expect("the new server takes the socket");
            std::mem::swap(&mut self.child, &mut new.child);
            new
        }

        /// Starts it again on the same socket and folder.
        pub fn restart(&mut self) {
            self.kill();
            self.launch();
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            self.kill();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A Redis Cluster of three primaries of its own on loopback TCP ports (a Cluster has no
    /// Unix sockets), made with `redis-cli --cluster create`; stopped and removed on drop.
    pub struct RedisCluster {
        dir: PathBuf,
        nodes: Vec<(u16, Child)>,
    }

    impl RedisCluster {
        /// `None` (with a note on stderr) when `redis-server` is not installed, unless `CI` is
        /// set.
        pub fn start() -> Option<Self> {
            if !installed() {
                return None;
            }
            let mut cluster = Self {
                dir: fresh_dir("zrc"),
                nodes: Vec::new(),
            };
            for _ in 0..3 {
                let port = free_port_with_bus();
                let child = tcp_node(
                    port,
                    &cluster.dir,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        // The slots of a node a test stops are lost; the others' stay served.
                        "--cluster-require-full-coverage",
                        "no",
                    ],
                );
                cluster.nodes.push((port, child));
            }
            for (port, _) in &cluster.nodes {
                answers(*port);
            }
            let addresses: Vec<String> = cluster
                .nodes
                .iter()
                .map(|(p, _)| format!("127.0.0.1:{p}"))
                .collect();
            let created = Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&addresses)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("redis-cli runs");
            assert!(created.success(), "redis-cli --cluster create");
            for (port, _) in &cluster.nodes {
                wait_until("the cluster is ok on every node", || {
                    cli(*port, &["CLUSTER", "INFO"])
                        .is_some_and(|i| i.lines().any(|l| l.trim() == "cluster_state:ok"))
                });
            }
            Some(cluster)
        }

        /// `redis://127.0.0.1:PORT` of a node that does not own the slot of hash tag `tag`
        /// (every key `zmcp:{<tag>}:…`): a server pointed there is told `MOVED`.
        pub fn url_not_owning(&self, tag: &str) -> String {
            let slot: u16 = cli(self.nodes[0].0, &["CLUSTER", "KEYSLOT", tag])
                .and_then(|s| s.trim().parse().ok())
                .expect("the slot");
            let owns = |port: u16| {
                let nodes = cli(port, &["CLUSTER", "NODES"]).unwrap_or_default();
                let mine = nodes
                    .lines()
                    .find(|l| l.contains("myself"))
                    .unwrap_or_default()
                    .to_owned();
                mine.split_whitespace().skip(8).any(|range| {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
                })
            };
            let port = self
                .nodes
                .iter()
                .map(|(p, _)| *p)
                .find(|p| !owns(*p))
                .expect("a node without the slot");
            format!("redis://127.0.0.1:{port}")
        }
    }

    impl RedisCluster {
        /// Stops the node at `url` (one of [`RedisCluster::url_not_owning`]'s answers).
        pub fn kill_node(&mut self, url: &str) {
            for (port, child) in &mut self.nodes {
                if url.ends_with(&format!(":{port}")) {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }

    impl Drop for RedisCluster {
        fn drop(&mut self) {
            for (_, child) in &mut self.nodes {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A primary, its replica and one Sentinel monitoring them as service `svc`, on loopback
    /// TCP ports of their own (Sentinel and replication speak TCP); stopped and removed on drop.
    pub struct RedisSentinel {
        dir: PathBuf,
        primary: Child,
        others: Vec<Child>,
        sentinel_port: u16,
    }

    impl RedisSentinel {
        /// `None` (with a note on stderr) when `redis-server` is not installed, unless `CI` is
        /// set. Returns once the Sentinel knows the replica (a failover can happen).
        pub fn start() -> Option<Self> {
            if !installed() {
                return None;
            }
            let dir = fresh_dir("zrs");
            let (p, r, s) = (free_port(), free_port(), free_port());
            let primary = tcp_node(p, &dir, &[]);
            answers(p);
            let replica = tcp_node(r, &dir, &["--replicaof", "127.0.0.1", &p.to_string()]);
            wait_until("the replica follows the primary", || {
                cli(r, &["INFO", "replication"])
                    .is_some_and(|i| i.contains("master_link_status:up"))
            });
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {s}\nbind 127.0.0.1\ndir {}\nsentinel monitor svc 127.0.0.1 {p} 1\nsentinel down-after-milliseconds svc 1000\nsentinel failover-timeout svc 5000\n",
                    dir.display()
                ),
            )
            .expect("sentinel.conf");
            let sentinel = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server --sentinel starts");
            wait_until("the Sentinel knows the replica", || {
                cli(s, &["SENTINEL", "REPLICAS", "svc"]).is_some_and(|o| o.contains(&r.to_string()))
            });
            Some(Self {
                dir,
                primary,
                others: vec![replica, sentinel],
                sentinel_port: s,
            })
        }

        /// `redis+sentinel://127.0.0.1:PORT/svc`.
        pub fn url(&self) -> String {
            format!("redis+sentinel://127.0.0.1:{}/svc", self.sentinel_port)
        }

        /// Kills the primary: the Sentinel promotes the replica a second or so later.
        pub fn kill_primary(&mut self) {
            let _ = self.primary.kill();
            let _ = self.primary.wait();
        }
    }

    impl Drop for RedisSentinel {
        fn drop(&mut self) {
            self.kill_primary();
            for child in &mut self.others {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Whether `redis-server` is installed; when it is not, a note on stderr, unless `CI` is set:
    /// then a missing server fails the test.
    fn installed() -> bool {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed (apt-get install redis-server); CI must have it"
            );
            eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
        }
        installed
    }

    /// A fresh, empty folder of this process under `/tmp` (short: a Unix socket's path is
    /// limited to about 100 bytes).
    fn fresh_dir(prefix: &str) -> PathBuf {
        let dir = PathBuf::from("/tmp").join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a folder for redis-server");
        dir
    }

    /// A `redis-server` on loopback TCP `port`, without persistence, with `extra` arguments;
    /// its files in a folder of its own below `dir`.
    fn tcp_node(port: u16, dir: &std::path::Path, extra: &[&str]) -> Child {
        let own = dir.join(port.to_string());
        std::fs::create_dir_all(&own).expect("a folder for a node");
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(&own)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts")
    }

    /// Waits until the server on `port` answers `PING`.
    fn answers(port: u16) {
        wait_until("a Redis node answers", || {
            cli(port, &["PING"]).is_some_and(|o| o.trim() == "PONG")
        });
    }

    /// A free loopback port.
    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        l.local_addr().expect("addr").port()
    }

    /// A free loopback port whose cluster bus port (+10000) is free too.
    fn free_port_with_bus() -> u16 {
        loop {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
            let port = l.local_addr().expect("addr").port();
            if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
                return port;
            }
        }
    }

    fn cli(port: u16, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(std::time::Instant::now() < until, "{what}: not within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
