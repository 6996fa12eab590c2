//! OTLP export settings from the standard variables, and exporters that say when they fail.
//!
//! The SDK's exporters drop a failed batch silently (their own diagnostics are off). Each
//! exporter here is wrapped in [`Watched`]: a failure is counted (`otel.export.failures`
//! {signal}) and logged at most once a minute per signal, naming the endpoint (without any
//! credentials it may hold) and how many exports failed since the last line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::TelemetryError;

/// How often a failing signal logs at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The timing variables of the OpenTelemetry SDK specification, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExportTiming {
    /// `OTEL_METRIC_EXPORT_INTERVAL` (default 15 s here; the specification's is 60 s).
    pub(crate) metric_interval: Duration,
    /// `OTEL_METRIC_EXPORT_TIMEOUT`: the longest a metrics export may take.
    pub(crate) metric_timeout: Option<Duration>,
    /// `OTEL_BSP_SCHEDULE_DELAY`: the delay between two span exports.
    pub(crate) span_delay: Option<Duration>,
    /// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`.
    pub(crate) traces_timeout: Option<Duration>,
    /// `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`.
    pub(crate) metrics_timeout: Option<Duration>,
}

impl ExportTiming {
    /// Reads the variables; a value that is not a whole number of milliseconds is an error
    /// naming the variable.
    pub(crate) fn from_vars(env: &HashMap<String, String>) -> Result<Self, TelemetryError> {
        let ms = |name: &str| -> Result<Option<Duration>, TelemetryError> {
            match env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .map(|n| Some(Duration::from_millis(n)))
                    .map_err(|_| {
                        TelemetryError(format!("{name}={v} is not a whole number of milliseconds"))
                    }),
            }
        };
        let otlp = ms("OTEL_EXPORTER_OTLP_TIMEOUT")?;
        Ok(Self {
            metric_interval: ms("OTEL_METRIC_EXPORT_INTERVAL")?
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(15)),
            metric_timeout: ms("OTEL_METRIC_EXPORT_TIMEOUT")?,
            span_delay: ms("OTEL_BSP_SCHEDULE_DELAY")?,
            traces_timeout: ms("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")?.or(otlp),
            metrics_timeout: ms("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT")?.or(otlp),
        })
    }
}

/// Failed exports, by signal; read by the `otel.export.failures` instrument.
#[derive(Debug, Default)]
pub(crate) struct ExportFailures {
    pub(crate) traces: AtomicU64,
    pub(crate) metrics: AtomicU64,
}

/// `url` without user information or query (`https://user:pass@host`, `?token=` would print a
/// secret).
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(an unparsable endpoint)".to_owned(),
    }
}

/// The first line of an error, without the `Debug` rendering of an inner error that some
/// exporters append (`... reqwest::Error { kind: ... }`).
fn plain(error: &str) -> String {
    let first = error.lines().next().unwrap_or_default();
    match first.find(" { ") {
        Some(at) => first[..at].trim_end_matches([':', ' ']).to_owned(),
        None => first.to_owned(),
    }
}

/// An exporter that counts and logs its failures.
#[derive(Debug)]
pub(crate) struct Watched<E> {
    inner: E,
    signal: &'static str,
    endpoint: String,
    failures: Arc<ExportFailures>,
    /// When the last line was logged, and how many failures since.
    last_log: Mutex<(Option<Instant>, u64)>,
}

impl<E> Watched<E> {
    pub(crate) fn new(
        inner: E,
        signal: &'static str,
        endpoint: &str,
        failures: Arc<ExportFailures>,
    ) -> Self {
        Self {
            inner,
            signal,
            endpoint: shown(endpoint),
            failures,
            last_log: Mutex::new((None, 0)),
        }
    }

    fn note(&self, result: &OTelSdkResult) {
        let Err(e) = result else { return };
        let counter = match self.signal {
            "traces" => &self.failures.traces,
            _ => &self.failures.metrics,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let Ok(mut last) = self.last_log.lock() else {
            return;
        };
        last.1 += 1;
        let due = last.0.is_none_or(|at| at.elapsed() >= LOG_EVERY);
        if due {
            tracing::warn!(
                signal = self.signal,
                endpoint = %self.endpoint,
                failed = last.1,
                "OTLP {} export to {} failed ({} failure(s) since the last report): {}",
                self.signal,
                self.endpoint,
                last.1,
                plain(&e.to_string())
            );
            *last = (Some(Instant::now()), 0);
        }
    }
}

impl<E: SpanExporter> SpanExporter for Watched<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.note(&result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Watched<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.note(&result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_variables_are_read_and_checked() {
        let env: HashMap<String, String> = [
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "700"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "300"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let t = ExportTiming::from_vars(&env).unwrap();
        assert_eq!(t.metric_interval, Duration::from_millis(250));
        assert_eq!(t.traces_timeout, Some(Duration::from_millis(700)));
        assert_eq!(t.metrics_timeout, Some(Duration::from_millis(300)));
        assert_eq!(t.span_delay, Some(Duration::from_millis(50)));
        assert_eq!(
            ExportTiming::from_vars(&HashMap::new())
                .unwrap()
                .metric_interval,
            Duration::from_secs(15)
        );
        let bad: HashMap<String, String> =
            [("OTEL_METRIC_EXPORT_TIMEOUT".to_owned(), "5s".to_owned())].into();
        let e = ExportTiming::from_vars(&bad).unwrap_err().to_string();
        assert!(e.contains("OTEL_METRIC_EXPORT_TIMEOUT"), "{e}");
    }

    #[test]
    fn endpoints_and_errors_are_shown_without_secrets_or_debug_structs() {
        assert_eq!(
            shown("https://u:p@collector:4318/v1/traces"),
            "https://collector:4318/v1/traces"
        );
        assert_eq!(
            plain("Operation failed: reqwest::Error { kind: Request, url: \"x\" }"),
            "Operation failed: reqwest::Error"
        );
    }
}
