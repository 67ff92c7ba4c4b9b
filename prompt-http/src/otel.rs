//! OpenTelemetry export (opt-in): the server's spans — one per HTTP request, one per
//! LLM call ([`prompt_core::call::chat_span`]) — go to an OTLP/HTTP (protobuf)
//! collector; the W3C `traceparent` of a request is honoured on the way in and sent
//! to the vendors on the way out.
//!
//! Export never blocks nor fails a request: an ended span is handed to a bounded queue
//! with `try_send`, and one task on the server's runtime exports batches from it. A
//! span that finds the queue full, or whose batch the collector refused, is counted on
//! `/metrics` as `prompt_registry_otlp_spans_dropped_total{reason}`. The SDK's own
//! `BatchSpanProcessor` is not used: it exports from a thread of its own with a
//! blocking executor (so it needs reqwest's blocking client, another runtime) and does
//! not expose how many spans it dropped.
//!
//! Only spans of this workspace's crates are exported, and only their fields (ids,
//! names, models, token counts, routes, statuses): log events never become span
//! events, so nothing a log line says (a cause, a link) leaves this way, and no span
//! has a field with a prompt body, variables, a header or a key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::{mpsc, oneshot};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// Spans waiting for export at most; more are dropped (and counted).
pub const QUEUE_SPANS: usize = 2048;
/// Spans per export request at most.
pub const BATCH_SPANS: usize = 512;
/// How long spans wait for a batch to fill before it is sent anyway (the SDK's
/// default `OTEL_BSP_SCHEDULE_DELAY`).
pub const BATCH_DELAY: Duration = Duration::from_secs(5);
/// How long one export request may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The name of the counter of dropped spans.
pub const DROPPED_METRIC: &str = "prompt_registry_otlp_spans_dropped_total";
/// The name of the counter of exported spans.
pub const EXPORTED_METRIC: &str = "prompt_registry_otlp_spans_exported_total";

static ON: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (so request handling can skip what only export needs).
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Where spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtlpTarget {
    /// The base URL of an OTLP/HTTP collector (`http://HOST:4318`); spans are posted to
    /// its `/v1/traces` (a URL already ending so is used as it is).
    Endpoint(String),
    /// No flag, but `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set: the SDK resolves it as the
    /// OpenTelemetry specification says.
    Standard,
}

impl OtlpTarget {
    /// `--otlp-endpoint` / `PROMPT_REGISTRY_OTLP_ENDPOINT` when given, else the standard
    /// variables when one is set (looked up with `env`), else none: export is off.
    pub fn resolve(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, String> {
        if let Some(url) = flag.map(str::trim).filter(|u| !u.is_empty()) {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.parse::<axum::http::Uri>().is_ok();
            if !ok {
                return Err(format!(
                    "invalid PROMPT_REGISTRY_OTLP_ENDPOINT / --otlp-endpoint '{url}': must be \
                     an http(s) URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318"
                ));
            }
            return Ok(Some(OtlpTarget::Endpoint(url.to_owned())));
        }
        let standard = [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .iter()
        .any(|k| env(k).is_some_and(|v| !v.trim().is_empty()));
        Ok(standard.then_some(OtlpTarget::Standard))
    }

    /// The URL spans are posted to, when this target names it.
    pub fn traces_url(&self) -> Option<String> {
        match self {
            OtlpTarget::Endpoint(base) => {
                let base = base.trim_end_matches('/');
                Some(if base.ends_with("/v1/traces") {
                    base.to_owned()
                } else {
                    format!("{base}/v1/traces")
                })
            }
            OtlpTarget::Standard => None,
        }
    }
}

/// The running export: the tracer provider and its queue. [`Telemetry::shutdown`]
/// flushes what is queued.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    queue: mpsc::Sender<Queued>,
    worker: tokio::task::JoinHandle<()>,
}

impl Telemetry {
    /// Start exporting to `target` (on the current tokio runtime), install the W3C
    /// trace-context propagator and the vendor-request header hook.
    pub fn start(target: &OtlpTarget) -> Result<Self, String> {
        use opentelemetry_otlp::WithExportConfig;
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
        if let Some(url) = target.traces_url() {
            builder = builder.with_endpoint(url);
        }
        let mut exporter = builder
            .build()
            .map_err(|e| format!("cannot set up the OTLP exporter (--otlp-endpoint): {e}"))?;
        let resource = Resource::builder()
            .with_service_name("prompt-registry")
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        exporter.set_resource(&resource);
        let (queue, rx) = mpsc::channel(QUEUE_SPANS);
        let worker = tokio::spawn(export_loop(exporter, rx));
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_span_processor(QueueProcessor {
                queue: queue.clone(),
            })
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        prompt_providers::http::set_outgoing_headers(inject_trace_context);
        crate::metrics::install();
        // Present on /metrics from the start, at 0.
        metrics::counter!(DROPPED_METRIC, "reason" => "queue_full").increment(0);
        metrics::counter!(DROPPED_METRIC, "reason" => "export_failed").increment(0);
        metrics::counter!(EXPORTED_METRIC).increment(0);
        ON.store(true, Ordering::Relaxed);
        Ok(Telemetry {
            provider,
            queue,
            worker,
        })
    }

    /// The `tracing` layer that turns this workspace's spans into OpenTelemetry spans
    /// (events are left out: see the module docs).
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let tracer = self.provider.tracer("prompt-registry");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_target(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span()
                    && *meta.level() <= tracing::Level::INFO
                    && meta.target().starts_with("prompt_")
            }))
    }

    /// Export what is queued, then stop (waits at most `within`).
    pub async fn shutdown(self, within: Duration) {
        let (done, flushed) = oneshot::channel();
        let flush = async {
            if self.queue.send(Queued::Flush(done)).await.is_ok() {
                let _ = flushed.await;
            }
        };
        if tokio::time::timeout(within, flush).await.is_err() {
            tracing::warn!("OTLP export: spans still queued at shutdown were not exported");
        }
        drop(self.queue);
        let _ = self.provider.shutdown();
        self.worker.abort();
    }
}

/// What the queue carries: an ended span, or a request to export everything before it.
#[derive(Debug)]
enum Queued {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
}

/// Hands ended spans to the export task without waiting; counts the ones it cannot.
#[derive(Debug)]
struct QueueProcessor {
    queue: mpsc::Sender<Queued>,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.queue.try_send(Queued::Span(Box::new(span))).is_err() {
            metrics::counter!(DROPPED_METRIC, "reason" => "queue_full").increment(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Flushing is async here: `Telemetry::shutdown` does it.
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Batch spans from the queue and export them: when a batch is full, after
/// [`BATCH_DELAY`], on a flush, and when the queue closes.
async fn export_loop(exporter: opentelemetry_otlp::SpanExporter, mut rx: mpsc::Receiver<Queued>) {
    let mut batch: Vec<SpanData> = Vec::with_capacity(BATCH_SPANS);
    let mut tick = tokio::time::interval(BATCH_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = rx.recv() => match next {
                Some(Queued::Span(span)) => {
                    batch.push(conventions(*span));
                    if batch.len() >= BATCH_SPANS {
                        export(&exporter, &mut batch).await;
                    }
                }
                Some(Queued::Flush(done)) => {
                    export(&exporter, &mut batch).await;
                    let _ = done.send(());
                }
                None => {
                    export(&exporter, &mut batch).await;
                    return;
                }
            },
            _ = tick.tick() => export(&exporter, &mut batch).await,
        }
    }
}

async fn export(exporter: &opentelemetry_otlp::SpanExporter, batch: &mut Vec<SpanData>) {
    while !batch.is_empty() {
        let part: Vec<SpanData> = batch.drain(..batch.len().min(BATCH_SPANS)).collect();
        let n = part.len() as u64;
        match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(part)).await {
            Ok(Ok(())) => metrics::counter!(EXPORTED_METRIC).increment(n),
            Ok(Err(e)) => {
                metrics::counter!(DROPPED_METRIC, "reason" => "export_failed").increment(n);
                tracing::warn!(error = %e, spans = n, "OTLP export failed: spans dropped");
            }
            Err(_) => {
                metrics::counter!(DROPPED_METRIC, "reason" => "export_failed").increment(n);
                tracing::warn!(spans = n, "OTLP export timed out: spans dropped");
            }
        }
    }
}

/// What `tracing` fields cannot say: `gen_ai.response.finish_reasons` is a `string[]`
/// in the GenAI conventions, recorded as one string by `prompt_core::call`.
fn conventions(mut span: SpanData) -> SpanData {
    for kv in &mut span.attributes {
        if kv.key.as_str() == "gen_ai.response.finish_reasons"
            && let Value::String(s) = &kv.value
        {
            kv.value = Value::Array(opentelemetry::Array::String(vec![s.clone()]));
        }
    }
    span
}

/// The trace context a request came with (`traceparent`, `tracestate`), as the parent
/// of its server span; empty when export is off or the headers are absent or invalid.
pub fn incoming_context(headers: &HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Make `span` a child of the request's incoming trace context, if it has one.
pub fn set_parent_from(span: &tracing::Span, headers: &HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let _ = span.set_parent(incoming_context(headers));
}

/// The vendor-request hook: the current span's `traceparent` (and `tracestate`).
fn inject_trace_context(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_and_the_standard_variables_turn_export_on() {
        let none = |_: &str| None;
        assert_eq!(OtlpTarget::resolve(None, none).unwrap(), None);
        let t = OtlpTarget::resolve(Some("http://127.0.0.1:4318/"), none)
            .unwrap()
            .unwrap();
        assert_eq!(
            t.traces_url().as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        let t = OtlpTarget::resolve(Some("http://c:4318/v1/traces"), none)
            .unwrap()
            .unwrap();
        assert_eq!(t.traces_url().as_deref(), Some("http://c:4318/v1/traces"));
        let std_env = |k: &str| (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://x".into());
        assert_eq!(
            OtlpTarget::resolve(None, std_env).unwrap(),
            Some(OtlpTarget::Standard)
        );
        let e = OtlpTarget::resolve(Some("collector:4318"), none).unwrap_err();
        assert!(e.contains("--otlp-endpoint"), "{e}");
    }

    #[test]
    fn finish_reasons_become_an_array() {
        let mut kv = vec![KeyValue::new("gen_ai.response.finish_reasons", "stop")];
        let mut span = SpanData {
            span_context: opentelemetry::trace::SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Client,
            name: "chat m".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: std::mem::take(&mut kv),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: opentelemetry::trace::Status::Unset,
            instrumentation_scope: Default::default(),
        };
        span = conventions(span);
        assert_eq!(
            span.attributes[0].value,
            Value::Array(opentelemetry::Array::String(vec!["stop".into()]))
        );
    }
}
