//! Every instrument the server records, with its name in one place.

use std::fmt;

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, UpDownCounter};

use super::kv;

/// Bucket bounds (seconds) for call durations: 1 ms to 30 s.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every instrument the server records. Names follow OpenTelemetry conventions; the Prometheus
/// names (dots to underscores, unit and `_total` suffixes) are in `observability/README.md`.
#[derive(Clone)]
pub(crate) struct Metrics {
    /// `mcp.tool.calls` {tool, outcome}
    pub(crate) tool_calls: Counter<u64>,
    /// `mcp.requests.refused` {reason}: `/mcp` requests refused before any tool ran
    /// (`unauthenticated`, `rate_limited`, `verifier_unavailable`).
    pub(crate) refused: Counter<u64>,
    /// `mcp.tool.duration` (s) {tool, outcome}
    pub(crate) tool_duration: Histogram<f64>,
    /// `sunco.upstream.requests` {operation, status}: one per HTTP attempt.
    pub(crate) upstream_requests: Counter<u64>,
    /// `sunco.upstream.duration` (s) {operation, status}
    pub(crate) upstream_duration: Histogram<f64>,
    /// `sunco.upstream.throttled` {operation}: 429 answers.
    pub(crate) throttled: Counter<u64>,
    /// `sunco.upstream.retries` {operation, reason}
    pub(crate) retries: Counter<u64>,
    /// `sunco.dispatcher.backoff` (s) {reason}: time calls were held back before a retry.
    pub(crate) backoff: Counter<f64>,
    /// `sunco.dispatcher.queue.depth`: calls waiting for admission.
    pub(crate) queue_depth: Gauge<u64>,
    /// `sunco.dispatcher.in_flight`: upstream requests awaiting an answer.
    pub(crate) in_flight: Gauge<u64>,
    /// `sunco.dispatcher.send_rate` (requests/s): the current admission rate.
    pub(crate) send_rate: Gauge<f64>,
    /// `sunco.auth.token_refreshes` {outcome}
    pub(crate) token_refreshes: Counter<u64>,
    /// `sunco.switchboard.cache.lookups` {result: hit|miss}
    pub(crate) cache_lookups: Counter<u64>,
    /// `sunco.switchboard.cache.loads` {outcome}
    pub(crate) cache_loads: Counter<u64>,
    /// `sunco.delivery.events` {type, channel, code (failures)}
    pub(crate) delivery_events: Counter<u64>,
    /// `actor.restarts` {actor}
    pub(crate) actor_restarts: Counter<u64>,
    /// `sunco.webhook.requests` {outcome}
    pub(crate) webhook_requests: Counter<u64>,
    /// `sunco.webhook.events` {type, outcome: recorded|duplicate|unusable|ignored}
    pub(crate) webhook_events: Counter<u64>,
    /// `mcp.server.ready`: 1 when `/readyz` would answer 200, else 0.
    pub(crate) ready: Gauge<u64>,
    /// `db.client.operation.duration` (s) {db.system.name, db.operation.name, error.type}: each
    /// round trip to the shared store (Redis).
    pub(crate) store_duration: Histogram<f64>,
    /// `mcp.server.degraded` {reason}: 1 while the replica serves without its shared store.
    pub(crate) degraded: Gauge<u64>,
    /// `mcp.server.config.reloads` {outcome: applied|unchanged|invalid}: settings files re-read.
    pub(crate) config_reloads: Counter<u64>,
    /// `http.server.active_requests`: `/mcp` POSTs being handled or waiting for a turn.
    pub(crate) active_requests: UpDownCounter<i64>,
    /// `mcp.claims` {outcome}: claims handed out and how they ended.
    pub(crate) claims: Counter<u64>,
    /// `mcp.claims.waiting`: `claim_conversation` calls waiting for work.
    pub(crate) claim_waiters: UpDownCounter<i64>,
    /// `mcp.queue.conversations` {state}: conversations waiting for a reply.
    pub(crate) queue: Gauge<u64>,
    /// `mcp.queue.oldest_wait`: the longest a customer waits now.
    pub(crate) oldest_wait: Gauge<f64>,
    /// `mcp.claims.answer_delay`: from a burst's last user message to the answer under a claim.
    pub(crate) answer_delay: Histogram<f64>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Every instrument, built on `meter`. A flat table: one field per instrument, with its name
    /// and description.
    pub(crate) fn new(meter: &Meter) -> Self {
        let seconds = |name, description| seconds(meter, name, description);
        let counter = |name, description| counter(meter, name, description);
        let gauge = |name, description| gauge(meter, name, description);
        Self {
            tool_calls: counter("mcp.tool.calls", "MCP tool calls, by tool and outcome"),
            refused: counter(
                "mcp.requests.refused",
                "/mcp requests refused before any tool ran, by reason",
            ),
            tool_duration: seconds("mcp.tool.duration", "Duration of MCP tool calls"),
            upstream_requests: counter(
                "sunco.upstream.requests",
                "HTTP attempts to Sunshine Conversations, by operation and status",
            ),
            upstream_duration: seconds(
                "sunco.upstream.duration",
                "Duration of HTTP attempts to Sunshine Conversations",
            ),
            throttled: counter(
                "sunco.upstream.throttled",
                "429 answers from Sunshine Conversations",
            ),
            retries: counter(
                "sunco.upstream.retries",
                "Upstream attempts repeated, by reason",
            ),
            backoff: meter
                .f64_counter("sunco.dispatcher.backoff")
                .with_unit("s")
                .with_description(
                    "Time calls were held back before a retry (Retry-After or backoff)",
                )
                .build(),
            queue_depth: gauge(
                "sunco.dispatcher.queue.depth",
                "Calls waiting in the dispatcher's queue",
            ),
            in_flight: gauge(
                "sunco.dispatcher.in_flight",
                "Upstream requests awaiting an answer",
            ),
            send_rate: meter
                .f64_gauge("sunco.dispatcher.send_rate")
                .with_unit("{request}/s")
                .with_description("The dispatcher's current admission rate")
                .build(),
            token_refreshes: counter(
                "sunco.auth.token_refreshes",
                "Credentials minted, by outcome",
            ),
            cache_lookups: counter(
                "sunco.switchboard.cache.lookups",
                "Switchboard cache lookups, by result (hit or miss)",
            ),
            cache_loads: counter(
                "sunco.switchboard.cache.loads",
                "Switchboard loads from the upstream, by outcome",
            ),
            delivery_events: counter(
                "sunco.delivery.events",
                "Delivery events received by webhook, by type and channel",
            ),
            actor_restarts: counter(
                "actor.restarts",
                "Actor restarts by the supervisor, by actor",
            ),
            webhook_requests: counter(
                "sunco.webhook.requests",
                "Webhook POSTs received, by outcome",
            ),
            webhook_events: counter(
                "sunco.webhook.events",
                "Webhook events received, by type and outcome (recorded, duplicate, unusable, ignored)",
            ),
            ready: gauge(
                "mcp.server.ready",
                "1 when the server is ready (actors up, credentials accepted), else 0",
            ),
            store_duration: seconds(
                "db.client.operation.duration",
                "Round trips to the shared store (Redis), by operation and error type",
            ),
            degraded: gauge(
                "mcp.server.degraded",
                "1 while the replica serves without its shared store (Redis), else 0",
            ),
            config_reloads: {
                let c = counter(
                    "mcp.server.config.reloads",
                    "Settings files re-read (SIGHUP or a change), by outcome: applied, unchanged or invalid (the old settings kept)",
                );
                // The series an alert watches exists from the start, at 0.
                c.add(0, &[kv("outcome", "invalid")]);
                c
            },
            active_requests: meter
                .i64_up_down_counter("http.server.active_requests")
                .with_unit("{request}")
                .with_description("/mcp POSTs being handled or waiting for a turn")
                .build(),
            claims: {
                let c = counter(
                    "mcp.claims",
                    "Claims handed out (claimed) and how they ended: answered, skipped, lapsed, superseded (a send refused for newer messages), handed_over",
                );
                // The series the alert on lapsing claims watches exists from the start.
                c.add(0, &[kv("outcome", "lapsed")]);
                c
            },
            claim_waiters: {
                let w = meter
                    .i64_up_down_counter("mcp.claims.waiting")
                    .with_unit("{call}")
                    .with_description("claim_conversation calls waiting for work")
                    .build();
                // 0 from the start: a replica without waiters shows it.
                w.add(0, &[]);
                w
            },
            queue: gauge(
                "mcp.queue.conversations",
                "Conversations waiting for a reply, by state (claimed, unclaimed)",
            ),
            oldest_wait: meter
                .f64_gauge("mcp.queue.oldest_wait")
                .with_unit("s")
                .with_description("The longest a customer has waited for a reply, now")
                .build(),
            answer_delay: seconds(
                "mcp.claims.answer_delay",
                "From a burst's last user message to the answer sent under a claim",
            ),
        }
    }
}

/// One unit counted in an up-down counter from its start until it is dropped (a request being
/// handled, a call waiting): however it ends, the count comes back down.
pub(crate) struct InProgress(UpDownCounter<i64>);

impl InProgress {
    pub(crate) fn count(counter: &UpDownCounter<i64>) -> Self {
        counter.add(1, &[]);
        Self(counter.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.add(-1, &[]);
    }
}

/// A duration histogram, seconds, with the buckets of [`DURATION_BUCKETS`].
fn seconds(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(DURATION_BUCKETS.to_vec())
        .build()
}

fn counter(meter: &Meter, name: &'static str, description: &'static str) -> Counter<u64> {
    meter
        .u64_counter(name)
        .with_description(description)
        .build()
}

fn gauge(meter: &Meter, name: &'static str, description: &'static str) -> Gauge<u64> {
    meter.u64_gauge(name).with_description(description).build()
}
