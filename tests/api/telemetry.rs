//! Spans and metrics of representative paths, OTLP export to a receiver started here, the
//! `/metrics` exposition checked by promtool, and the dashboards' and rules' queries checked
//! against what the server exports.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use prost::Message as _;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

use zendesk_messaging_mcp::actors::{ActorKind, SupervisorSettings};
use zendesk_messaging_mcp::telemetry::Telemetry;

use crate::mcp_support::TestServer;

/// Spans recorded by this test's thread (the tests run on a current-thread runtime, so the
/// server, the simulator and the client all run here).
struct Spans {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Spans {
    fn capture() -> Self {
        crate::support::init_tracing();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            exporter,
            _provider: provider,
            _guard: guard,
        }
    }

    fn all(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().expect("spans")
    }

    fn named(&self, name: &str) -> Vec<SpanData> {
        self.all().into_iter().filter(|s| s.name == name).collect()
    }
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn event_names(span: &SpanData) -> Vec<String> {
    span.events.iter().map(|e| e.name.to_string()).collect()
}

/// The server's `/metrics` exposition.
pub(crate) async fn metrics_text(t: &TestServer) -> String {
    metrics_at(&format!("http://{}", t.server.addr)).await
}

/// The `/metrics` exposition of the server at `base` (`http://HOST:PORT`).
pub(crate) async fn metrics_at(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The samples of `name` whose labels include every one of `labels`.
fn samples<'t>(
    text: &'t str,
    name: &str,
    labels: &[(&str, &str)],
) -> impl Iterator<Item = f64> + 't {
    let (series, bare) = (format!("{name}{{"), format!("{name} "));
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines()
        .filter(move |l| l.starts_with(&series) || l.starts_with(&bare))
        .filter(move |l| labels.iter().all(|kv| l.contains(kv)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The value of the first sample of `name` whose labels include every one of `labels`.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text, name, labels).next()
}

/// The sum of the samples of `name` whose labels include every one of `labels` (0 for none).
pub(crate) fn sample_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name, labels).sum()
}

use crate::support::quick;

#[tokio::test]
async fn a_throttled_send_shows_the_429_wait_and_the_retry() {
    let spans = Spans::capture();
    let t = TestServer::start_with(quick(), |_| {}).await;
    let conv = t.conversation_of("demo-user-02").await;
    // One request at a time, five a second: the second of two sends meets a 429.
    t.sim
        .admin(
            "PUT",
            "/_sim/faults",
            Some(json!({"rateLimit": {"rps": 5.0, "burst": 1}})),
        )
        .await;
    let send = |text: &'static str| {
        let t = &t;
        let conv = conv.clone();
        async move {
            t.ok(
                "send_message",
                json!({"conversationId": conv, "content": {"type": "text", "text": text}}),
            )
            .await
        }
    };
    tokio::join!(send("one"), send("two"));

    let dispatches = spans.named("dispatch PostMessage");
    let throttled = dispatches
        .iter()
        .find(|s| {
            event_names(s)
                .iter()
                .any(|e| e.contains("throttled by the upstream (429)"))
        })
        .expect("a dispatch span carries the 429 as an event");
    assert!(
        event_names(throttled).iter().any(|e| e == "retrying"),
        "and the retry: {:?}",
        event_names(throttled)
    );
    let attempts: Vec<SpanData> = spans
        .named("POST /v2/apps/{appId}/conversations/{conversationId}/messages")
        .into_iter()
        .filter(|a| a.parent_span_id == throttled.span_context.span_id())
        .collect();
    let statuses: Vec<Option<String>> = attempts
        .iter()
        .map(|a| attr(a, "http.response.status_code"))
        .collect();
    assert!(statuses.contains(&Some("429".into())), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&Some("201".into())), "{statuses:?}");
    let last = attempts.last().expect("attempts");
    assert_ne!(
        attr(last, "http.request.resend_count").as_deref(),
        Some("0")
    );
    assert_eq!(
        attr(last, "sunco.operation").as_deref(),
        Some("PostMessage")
    );
    assert_eq!(attr(last, "server.address").as_deref(), Some("127.0.0.1"));
    // The tool span is the dispatch span's parent.
    let tool = spans
        .named("tools/call send_message")
        .into_iter()
        .find(|s| s.span_context.span_id() == throttled.parent_span_id)
        .expect("tool span");
    assert_eq!(
        attr(&tool, "gen_ai.tool.name").as_deref(),
        Some("send_message")
    );

    let text = metrics_text(&t).await;
    assert!(
        sample(
            &text,
            "sunco_upstream_throttled_total",
            &[("operation", "PostMessage")]
        ) >= Some(1.0)
    );
    assert!(
        sample(
            &text,
            "sunco_upstream_retries_total",
            &[("operation", "PostMessage"), ("reason", "throttled")]
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "sunco_dispatcher_backoff_seconds_total",
            &[("reason", "throttled")]
        ) > Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "sunco_upstream_requests_total",
            &[("operation", "PostMessage"), ("status", "201")]
        ),
        Some(2.0)
    );
    // Nothing secret or personal in any span.
    for s in spans.all() {
        for kv in &s.attributes {
            let v = kv.value.to_string();
            assert!(
                !v.contains("sim-app-secret") && !v.contains("Bearer"),
                "{}: {v}",
                s.name
            );
            assert!(
                !v.contains("\"one\"") && v != "one" && v != "two",
                "no body in {}",
                s.name
            );
        }
    }
}

#[tokio::test]
async fn a_failed_delivery_counts_with_its_channel() {
    let spans = Spans::capture();
    let t = TestServer::start().await;
    let (_, mid) = t.send_undeliverable_form().await;
    t.delivery_state(&mid, "failed").await;
    let text = metrics_text(&t).await;
    assert_eq!(
        sample(
            &text,
            "sunco_delivery_events_total",
            &[("type", "failure"), ("channel", "messenger")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "sunco_webhook_requests_total",
            &[("outcome", "accepted")]
        ) >= Some(1.0)
    );
    // The webhook POST is a server span, and recording its events is a child of it. (A span is
    // exported when it ends, which for the POST is just after its answer: allow it a moment.)
    let linked = || {
        let records = spans.named("delivery record");
        let webhook_spans = spans.named("POST /webhooks/sunco");
        records.iter().any(|r| {
            webhook_spans
                .iter()
                .any(|w| w.span_context.span_id() == r.parent_span_id)
        })
    };
    crate::support::eventually(
        "a delivery record span ends under its webhook request",
        || async { linked() },
    )
    .await;
    let names: BTreeSet<String> = spans.all().iter().map(|s| s.name.to_string()).collect();
    assert!(
        linked(),
        "delivery record spans hang under the webhook request; spans: {names:?}"
    );
}

#[tokio::test]
async fn a_pass_control_to_an_unknown_target_is_recorded_without_an_upstream_span() {
    let spans = Spans::capture();
    let t = TestServer::start().await;
    let conv = t.conversation_of("demo-user-01").await;
    let e = t
        .err(
            "pass_control",
            json!({"conversationId": conv, "switchboardIntegration": "humans"}),
        )
        .await;
    assert_eq!(e["error"], "invalid_target");
    let tool = spans.named("tools/call pass_control");
    assert_eq!(tool.len(), 1);
    assert_eq!(
        attr(&tool[0], "error.type").as_deref(),
        Some("invalid_target")
    );
    assert!(
        spans.named("dispatch PassControl").is_empty()
            && spans
                .all()
                .iter()
                .all(|s| !s.name.ends_with("/passControl")),
        "no control call went upstream"
    );
    let text = metrics_text(&t).await;
    assert_eq!(
        sample(
            &text,
            "mcp_tool_calls_total",
            &[("tool", "pass_control"), ("outcome", "invalid_target")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "sunco_upstream_requests_total",
            &[("operation", "PassControl")]
        ),
        None
    );
}

/// An OTLP/HTTP receiver on a free port that keeps the spans of the export requests it decodes.
pub struct Receiver {
    pub url: String,
    pub spans: Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
    /// The resource attributes the exports named, as text.
    pub resource: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    pub async fn start() -> Self {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let resource = Arc::new(Mutex::new(Vec::new()));
        let keep = spans.clone();
        let keep_resource = resource.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let keep = keep.clone();
                let keep_resource = keep_resource.clone();
                async move {
                    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
                    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    for rs in request.resource_spans {
                        for kv in rs.resource.iter().flat_map(|r| r.attributes.iter()) {
                            if let Some(Any::StringValue(v)) =
                                kv.value.as_ref().and_then(|v| v.value.clone())
                            {
                                keep_resource
                                    .lock()
                                    .expect("lock")
                                    .push((kv.key.clone(), v));
                            }
                        }
                        for ss in rs.scope_spans {
                            keep.lock().expect("lock").extend(ss.spans);
                        }
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            spans,
            resource,
        }
    }

    fn names(&self) -> BTreeSet<String> {
        self.spans
            .lock()
            .expect("lock")
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }
}

#[tokio::test]
async fn spans_are_exported_over_otlp_http_to_a_collector() {
    let receiver = Receiver::start().await;
    let env: HashMap<String, String> = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            receiver.url.clone(),
        ),
        ("OTEL_METRICS_EXPORTER".to_owned(), "none".to_owned()),
    ]
    .into();
    let telemetry = Arc::new(Telemetry::from_vars(&env).expect("telemetry"));
    let tracer = telemetry
        .tracer()
        .expect("a tracer when OTLP is configured");
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    // This thread's default: the test's runtime runs the server, the simulator and the client here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let settings = SupervisorSettings {
        telemetry: telemetry.clone(),
        ..Default::default()
    };
    let t = TestServer::start_with(settings, |_| {}).await;
    let conv = t.conversation_of("demo-user-02").await;
    t.ok("get_conversation", json!({"conversationId": conv}))
        .await;
    telemetry.flush().await;
    let names = receiver.names();
    for expected in [
        "tools/call get_conversation",
        "dispatch GetConversation",
        "GET /v2/apps/{appId}/conversations/{conversationId}",
    ] {
        assert!(
            names.contains(expected),
            "{expected} not exported; got {names:?}"
        );
    }
    // Every replica names itself, so its series stay apart through a Collector.
    let resource = receiver.resource.lock().expect("lock").clone();
    assert!(
        resource
            .iter()
            .any(|(k, v)| k == "service.instance.id" && !v.is_empty()),
        "{resource:?}"
    );
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    let spans = receiver.spans.lock().expect("lock").clone();
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name}"))
            .clone()
    };
    let client = by_name("GET /v2/apps/{appId}/conversations/{conversationId}");
    for key in [
        "http.response.status_code",
        "server.port",
        "http.request.resend_count",
    ] {
        let value = client
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.clone());
        assert!(
            matches!(value, Some(Any::IntValue(_))),
            "{key} is exported as {value:?}, not an integer"
        );
    }
    // In a 2025-11-25 session too, the tool call is a child of the POST /mcp that carried it.
    let tool = by_name("tools/call get_conversation");
    let post = spans
        .iter()
        .find(|s| s.name == "POST /mcp" && s.span_id == tool.parent_span_id)
        .map(|s| s.trace_id.clone());
    assert_eq!(
        post.as_ref(),
        Some(&tool.trace_id),
        "the tool span's parent is not a POST /mcp span"
    );
}

#[tokio::test]
async fn metrics_pass_promtool_and_cover_every_dashboard_and_rule_query() {
    let mut settings = quick();
    settings.max_restarts = 100;
    let t = TestServer::start_with(settings, |_| {}).await;
    // Touch every instrument: tools, upstream calls, a 429 and its retry, the cache, a failed
    // delivery through the webhook, a refused webhook, an actor restart.
    let conv = t.conversation_of("demo-user-08").await;
    t.ok("get_switchboard_status", json!({"conversationId": conv}))
        .await;
    t.sim
        .admin(
            "PUT",
            "/_sim/faults",
            Some(json!({"rateLimit": {"rps": 5.0, "burst": 1}})),
        )
        .await;
    let form = json!({"type": "form", "fields": [{"type": "text", "name": "n", "label": "N"}]});
    let (a, b) = tokio::join!(
        t.ok(
            "send_message",
            json!({"conversationId": conv, "content": form})
        ),
        t.ok(
            "send_message",
            json!({"conversationId": conv, "content": {"type": "text", "text": "x"}})
        ),
    );
    t.sim.admin("PUT", "/_sim/faults", Some(json!({}))).await;
    let _ = reqwest::Client::new()
        .post(t.server.webhook_url())
        .header("X-API-Key", "wrong")
        .body("{}")
        .send()
        .await;
    // A customer's message claimed and answered: the queue's instruments.
    let waiting = t.conversation_of("demo-user-01").await;
    let asked = crate::claims::customer_writes(&t.sim, &waiting, "demo-user-01", "hello").await;
    crate::claims::heard(&t.client, &waiting, &asked).await;
    let claimed = t
        .ok("claim_conversation", json!({"conversationId": waiting}))
        .await;
    t.ok(
        "send_message",
        json!({"conversationId": waiting, "claim": claimed["claim"]["token"],
            "content": {"type": "text", "text": "hi"}}),
    )
    .await;
    t.server.actors.kill(ActorKind::Switchboard);
    let mid = a["messages"][0]["id"]
        .as_str()
        .or(b["messages"][0]["id"].as_str())
        .expect("id")
        .to_owned();
    crate::support::eventually("a delivery failure and a restart are counted", || async {
        let text = metrics_text(&t).await;
        sample(&text, "sunco_delivery_events_total", &[("type", "failure")]).is_some()
            && sample(&text, "actor_restarts_total", &[]).is_some()
    })
    .await;
    let _ = mid;
    let text = metrics_text(&t).await;
    let exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();

    // Every name a dashboard panel or an alert rule queries is one the server exports.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("observability");
    let mut queries = Vec::new();
    for entry in std::fs::read_dir(root.join("grafana/dashboards")).expect("dashboards") {
        let path = entry.expect("entry").path();
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        // Made for several replicas: the data source is chosen at import, and every query
        // is scoped to the replicas picked in the `instance` variable.
        let variables: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert_eq!(variables, ["datasource", "instance"], "{}", path.display());
        for panel in dashboard["panels"].as_array().expect("panels") {
            assert_eq!(
                panel["datasource"]["uid"],
                "${datasource}",
                "{}",
                path.display()
            );
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    assert!(
                        expr.contains("instance=~\"$instance\""),
                        "{}: {expr} is not scoped to the chosen replicas",
                        path.display()
                    );
                    queries.push((path.display().to_string(), expr.to_owned()));
                }
            }
        }
    }
    let rules = std::fs::read_to_string(root.join("prometheus/alerts.yml")).expect("rules");
    for line in rules.lines() {
        if let Some(expr) = line.trim().strip_prefix("expr:") {
            queries.push(("alerts.yml".into(), expr.trim().to_owned()));
        }
    }
    assert!(queries.len() >= 10, "dashboards and rules hold queries");
    let ours = ["mcp_", "sunco_", "actor_"];
    let mut checked = 0;
    for (file, expr) in &queries {
        for name in metric_names(expr)
            .into_iter()
            .filter(|n| ours.iter().any(|p| n.starts_with(p)))
        {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|base| exported.contains(*base))
                .unwrap_or(&name);
            assert!(
                exported.contains(family),
                "{file} queries {name}, which the server does not export ({exported:?})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10);

    // promtool: the exposition format, and the alert rules.
    match std::process::Command::new("promtool")
        .arg("--version")
        .output()
    {
        Ok(_) => {}
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not installed (Debian package prometheus): skipping its checks");
            return;
        }
        Err(e) => panic!("promtool is required in CI (Debian package prometheus): {e}"),
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(root.join("prometheus/alerts.yml"))
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool check rules: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Identifiers in a PromQL expression that look like metric names (not functions, labels or
/// keywords).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    let bytes = expr.as_bytes();
    let mut in_braces = 0;
    let mut in_string = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => in_string = !in_string,
            '{' if !in_string => in_braces += 1,
            '}' if !in_string => in_braces -= 1,
            c if !in_string && in_braces == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                let mut end = i + 1;
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                        end = j + 1;
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &expr[i..end];
                let next = bytes.get(end).copied();
                let is_call = next == Some(b'(');
                if !is_call && word.contains('_') {
                    names.insert(word.to_owned());
                }
            }
            _ => {}
        }
    }
    names
}
