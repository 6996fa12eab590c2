//! Telemetry: the metric instruments with their names in one place, the Prometheus rendering of
//! `/metrics`, OTLP export configured by the standard `OTEL_*` variables, W3C trace-context
//! propagation, and the log format that carries trace and span ids.
//!
//! What must never reach a span, a metric or a log line: a secret, a message body, a person's
//! profile data. Attributes here are low-cardinality names (tool, operation, status, channel);
//! ids of conversations and messages appear only as span attributes and audit fields.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer as _;

mod export;

pub(crate) use export::{ExportFailures, ExportTiming};

/// The instrumentation scope of everything this server records.
pub(crate) const SCOPE: &str = "zendesk-messaging-mcp";

mod metrics;

pub(crate) use metrics::{InProgress, Metrics};

/// The meter provider, its Prometheus registry, and (when configured) the OTLP pipelines.
pub struct Telemetry {
    pub(crate) metrics: Arc<Metrics>,
    registry: prometheus::Registry,
    meter_provider: SdkMeterProvider,
    tracer_provider: Option<SdkTracerProvider>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("otlp", &self.tracer_provider.is_some())
            .finish()
    }
}

/// Where OTLP data goes, per signal (`None` exports nothing), and in which encoding.
struct Endpoints {
    traces: Option<(String, opentelemetry_otlp::Protocol)>,
    metrics: Option<(String, opentelemetry_otlp::Protocol)>,
    timing: ExportTiming,
}

/// The OTLP/HTTP encoding for `signal`: `http/protobuf` unless the variables say `http/json`.
fn otlp_protocol(
    env: &HashMap<String, String>,
    signal: &str,
) -> Result<opentelemetry_otlp::Protocol, TelemetryError> {
    let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let var = format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL");
    let (name, value) = match get(&var) {
        Some(v) => (var.as_str(), v),
        None => (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            get("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or("http/protobuf"),
        ),
    };
    match value {
        "http/protobuf" => Ok(opentelemetry_otlp::Protocol::HttpBinary),
        "http/json" => Ok(opentelemetry_otlp::Protocol::HttpJson),
        other => Err(TelemetryError(format!(
            "{name}={other} is not supported: use http/protobuf (the default) or http/json"
        ))),
    }
}

/// The OTLP/HTTP endpoint of `signal` (`TRACES` or `METRICS`) as the `OTEL_*` variables give it:
/// `OTEL_EXPORTER_OTLP_{signal}_ENDPOINT` as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `path`;
/// none when neither is set, when `OTEL_SDK_DISABLED=true` or `OTEL_{signal}_EXPORTER=none`.
fn otlp_endpoint(env: &HashMap<String, String>, signal: &str, path: &str) -> Option<String> {
    let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if get(&format!("OTEL_{signal}_EXPORTER")) == Some("none") {
        return None;
    }
    if let Some(e) = get(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")) {
        return Some(e.to_owned());
    }
    get("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}{path}", base.trim_end_matches('/')))
}

#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry setup: {0}")]
pub struct TelemetryError(String);

impl Telemetry {
    /// Metrics for `/metrics` only; nothing exported.
    pub(crate) fn local() -> Self {
        Self::build(None).unwrap_or_else(|_| Self::bare())
    }

    /// A meter provider with no reader at all: the last resort if the registry cannot be set up.
    fn bare() -> Self {
        let meter_provider = SdkMeterProvider::builder().build();
        let metrics = Arc::new(Metrics::new(&meter_provider.meter(SCOPE)));
        Self {
            metrics,
            registry: prometheus::Registry::new(),
            meter_provider,
            tracer_provider: None,
        }
    }

    /// As the `OTEL_*` variables say: OTLP traces and metrics when an endpoint is set, over
    /// HTTP (`http/protobuf` by default, or `http/json`), with `OTEL_SERVICE_NAME`,
    /// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_TRACES_SAMPLER` honoured.
    /// Exporters run on their own threads: start-up never waits for a collector.
    pub fn from_env() -> Result<Self, TelemetryError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// [`Telemetry::from_env`] with the variables given.
    pub fn from_vars(env: &HashMap<String, String>) -> Result<Self, TelemetryError> {
        let mut resource = Resource::builder().with_service_name(
            env.get("OTEL_SERVICE_NAME")
                .cloned()
                .unwrap_or_else(|| "zendesk-messaging-mcp".to_owned()),
        );
        // Each replica's series apart, through a Collector too (its Prometheus exporter makes
        // `instance` of it): the host and process unless OTEL_RESOURCE_ATTRIBUTES names one.
        let named = env
            .get("OTEL_RESOURCE_ATTRIBUTES")
            .is_some_and(|a| a.contains("service.instance.id="));
        if !named {
            resource = resource.with_attribute(opentelemetry::KeyValue::new(
                "service.instance.id",
                format!(
                    "{}-{}",
                    crate::shared::redis_store::hostname(),
                    std::process::id()
                ),
            ));
        }
        let resource = resource.build();
        let with_protocol = |endpoint: Option<String>, signal: &str| {
            endpoint
                .map(|e| otlp_protocol(env, signal).map(|p| (e, p)))
                .transpose()
        };
        let endpoints = Endpoints {
            traces: with_protocol(otlp_endpoint(env, "TRACES", "/v1/traces"), "TRACES")?,
            metrics: with_protocol(otlp_endpoint(env, "METRICS", "/v1/metrics"), "METRICS")?,
            timing: ExportTiming::from_vars(env)?,
        };
        Self::build(Some((resource, endpoints)))
    }

    fn build(otlp: Option<(Resource, Endpoints)>) -> Result<Self, TelemetryError> {
        let registry = prometheus::Registry::new();
        let prometheus_reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .build()
            .map_err(|e| TelemetryError(e.to_string()))?;
        let mut meters = SdkMeterProvider::builder().with_reader(prometheus_reader);
        let mut tracer_provider = None;
        let failures = Arc::new(ExportFailures::default());
        if let Some((resource, endpoints)) = otlp {
            let timing = endpoints.timing;
            meters = meters.with_resource(resource.clone());
            if let Some((endpoint, protocol)) = endpoints.metrics {
                let mut builder = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_endpoint(endpoint.clone())
                    .with_protocol(protocol);
                // The reader enforces no timeout of its own: the export's HTTP timeout is it.
                if let Some(t) = timing.metric_timeout.or(timing.metrics_timeout) {
                    builder = builder.with_timeout(t);
                }
                let exporter = builder
                    .build()
                    .map_err(|e| TelemetryError(format!("OTLP metrics exporter: {e}")))?;
                let exporter =
                    export::Watched::new(exporter, "metrics", &endpoint, failures.clone());
                meters = meters.with_reader(
                    opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
                        .with_interval(timing.metric_interval)
                        .build(),
                );
            }
            // Spans get ids even when they are not exported, so log lines carry them.
            let mut tracers = SdkTracerProvider::builder().with_resource(resource);
            if let Some((endpoint, protocol)) = endpoints.traces {
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(endpoint.clone())
                    .with_protocol(protocol);
                if let Some(t) = timing.traces_timeout {
                    builder = builder.with_timeout(t);
                }
                let exporter = builder
                    .build()
                    .map_err(|e| TelemetryError(format!("OTLP span exporter: {e}")))?;
                let exporter =
                    export::Watched::new(exporter, "traces", &endpoint, failures.clone());
                let mut batch = opentelemetry_sdk::trace::BatchConfigBuilder::default();
                if let Some(delay) = timing.span_delay {
                    batch = batch.with_scheduled_delay(delay);
                }
                let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batch.build())
                    .build();
                tracers = tracers.with_span_processor(processor);
            }
            tracer_provider = Some(tracers.build());
        }
        let meter_provider = meters.build();
        let meter = meter_provider.meter(SCOPE);
        let metrics = Arc::new(Metrics::new(&meter));
        let observed = failures.clone();
        let _ = meter
            .u64_observable_counter("otel.export.failures")
            .with_description("OTLP exports that failed, by signal (traces, metrics)")
            .with_callback(move |o| {
                use std::sync::atomic::Ordering::Relaxed;
                o.observe(observed.traces.load(Relaxed), &[kv("signal", "traces")]);
                o.observe(observed.metrics.load(Relaxed), &[kv("signal", "metrics")]);
            })
            .build();
        Ok(Self {
            metrics,
            registry,
            meter_provider,
            tracer_provider,
        })
    }

    /// The tracer for the `tracing-opentelemetry` layer (none for [`Telemetry::local`]).
    pub fn tracer(&self) -> Option<opentelemetry_sdk::trace::Tracer> {
        self.tracer_provider.as_ref().map(|p| p.tracer(SCOPE))
    }

    /// The metrics in the Prometheus text exposition format.
    pub(crate) fn render_prometheus(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = prometheus::TextEncoder::new().encode(&families, &mut out) {
            tracing::warn!("cannot render the metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Flushes and stops the exporters. They block, so this runs on a blocking thread.
    pub async fn shutdown(self: Arc<Self>) {
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(p) = &self.tracer_provider {
                let _ = p.force_flush();
                let _ = p.shutdown();
            }
            let _ = self.meter_provider.shutdown();
        })
        .await;
    }

    /// Exports finished spans now (tests and shutdown).
    pub async fn flush(self: &Arc<Self>) {
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(p) = &this.tracer_provider {
                let _ = p.force_flush();
            }
        })
        .await;
    }
}

/// Attribute helpers.
pub(crate) fn kv(key: &'static str, value: impl Into<opentelemetry::Value>) -> KeyValue {
    KeyValue::new(key, value)
}

// ---------------------------------------------------------------------------------------------
// W3C trace context

struct MapCarrier<'a>(&'a HashMap<String, String>);

impl Extractor for MapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct HeaderCarrier<'a>(&'a mut Vec<(String, String)>);

impl Injector for HeaderCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// The server span of the HTTP request that carried an MCP message, kept in the request's
/// extensions so the tool call's span is its child even when rmcp runs the call in another task
/// (a 2025-11-25 session's).
#[derive(Debug, Clone)]
pub(crate) struct RequestSpan(pub tracing::Span);

/// Makes `span` a child of the remote context in `traceparent` (and `tracestate`), if valid.
pub(crate) fn adopt_remote_parent(
    span: &tracing::Span,
    traceparent: &str,
    tracestate: Option<&str>,
) {
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(ts) = tracestate {
        carrier.insert("tracestate".to_owned(), ts.to_owned());
    }
    let cx = TraceContextPropagator::new().extract(&MapCarrier(&carrier));
    use opentelemetry::trace::TraceContextExt;
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent`/`tracestate` headers that carry `span`'s context to the upstream.
pub(crate) fn context_headers(span: &tracing::Span) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut HeaderCarrier(&mut headers));
    headers
}

/// The trace and span ids of `span`, hex, when it is being recorded.
pub(crate) fn ids_of(span: &tracing::Span) -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_is_off_unless_an_endpoint_is_set() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let traces = |e: &HashMap<String, String>| otlp_endpoint(e, "TRACES", "/v1/traces");
        let metrics = |e: &HashMap<String, String>| otlp_endpoint(e, "METRICS", "/v1/metrics");
        assert_eq!(traces(&env(&[])), None);
        assert_eq!(traces(&env(&[("OTEL_SERVICE_NAME", "x")])), None);
        let on = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")]);
        assert_eq!(
            traces(&on).as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            metrics(&on).as_deref(),
            Some("http://127.0.0.1:4318/v1/metrics")
        );
        let traces_only = env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/x")]);
        assert_eq!(traces(&traces_only).as_deref(), Some("http://c/x"));
        assert_eq!(metrics(&traces_only), None);
        let disabled = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        assert_eq!(traces(&disabled), None);
        let no_metrics = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]);
        assert_eq!(metrics(&no_metrics), None);
        assert!(traces(&no_metrics).is_some());
    }

    #[test]
    fn prometheus_names_follow_the_catalogue() {
        let t = Telemetry::local();
        t.metrics
            .tool_calls
            .add(1, &[kv("tool", "send_message"), kv("outcome", "ok")]);
        t.metrics
            .tool_duration
            .record(0.02, &[kv("tool", "send_message"), kv("outcome", "ok")]);
        t.metrics.backoff.add(1.5, &[kv("reason", "throttled")]);
        t.metrics.queue_depth.record(3, &[]);
        let text = t.render_prometheus();
        assert!(text.contains("mcp_tool_calls_total{"), "{text}");
        assert!(text.contains("mcp_tool_duration_seconds_bucket{"), "{text}");
        assert!(
            text.contains("sunco_dispatcher_backoff_seconds_total{"),
            "{text}"
        );
        assert!(text.contains("sunco_dispatcher_queue_depth{"), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Logs

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, with `trace_id` and `span_id` when inside a traced span.
    Json,
    /// Human-readable lines.
    Text,
}

/// Collects an event's fields into a JSON object.
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

/// Span fields as the JSON format needs them: not at all. Its lines name their spans and carry
/// the trace ids; the spans' attributes go to OpenTelemetry. Formatting every span's fields into
/// text on the way (what the default does) would cost each call for nothing.
struct NoSpanFields;

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: tracing_subscriber::fmt::format::Writer<'w>,
        _fields: R,
    ) -> fmt::Result {
        Ok(())
    }
}

/// JSON lines: `timestamp`, `level`, `target`, the event's fields (`message` among them), the
/// names of the spans it happened in, and the OpenTelemetry `trace_id`/`span_id` of the current
/// span, so a log line leads to its trace.
struct JsonWithTrace;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonWithTrace
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut line = serde_json::Map::new();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), now.into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("target".into(), event.metadata().target().into());
        let mut fields = serde_json::Map::new();
        event.record(&mut JsonFields(&mut fields));
        line.extend(fields);
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<serde_json::Value> =
                scope.from_root().map(|s| s.name().into()).collect();
            line.insert("spans".into(), spans.into());
        }
        if let Some((trace_id, span_id)) = ids_of(&tracing::Span::current()) {
            line.insert("trace_id".into(), trace_id.into());
            line.insert("span_id".into(), span_id.into());
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Keeps the log writer's thread alive; dropping it flushes what is left.
pub(crate) type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Installs the process's subscriber: `RUST_LOG` filtering (`info` by default), log lines on
/// stderr in `format`, and spans to OpenTelemetry through `tracer` when there is one.
///
/// Lines are written by a thread of their own, so a call never waits on stderr; when that
/// thread falls behind, callers wait rather than lose lines (audit records among them).
pub fn init_logging(
    format: LogFormat,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
) -> Result<LogGuard, TelemetryError> {
    // 16k lines of slack (the default 128k preallocates 4 MB for bursts a log reader that
    // keeps up never sees).
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(16_384)
        .lossy(false)
        .finish(std::io::stderr());
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // rmcp logs each JSON-RPC error it answers (an unknown tool, say) as a warning with the
        // error's Debug form; those are answers to a client, counted in the tool metrics, not
        // the server's trouble.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,rmcp=warn,rmcp::service=error")
        });
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(JsonWithTrace)
            .fmt_fields(NoSpanFields)
            .with_writer(writer)
            .boxed(),
        // Colour only for a terminal: escape codes in a file or a log pipeline are noise.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(writer)
            .boxed(),
    };
    // Spans carry the attributes the code gives them, nothing per poll or per thread: source
    // locations, thread ids and busy/idle timings would cost every call and tell little.
    let otel = tracer.map(|t| {
        tracing_opentelemetry::layer()
            .with_tracer(t)
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError(e.to_string()))?;
    Ok(guard)
}
