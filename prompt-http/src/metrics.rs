//! Prometheus metrics: one process-wide recorder, rendered at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the recorder (once per process; later calls are no-ops).
pub fn install() {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0,
            ])
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                describe();
                Some(handle)
            }
            Err(_) => None,
        }
    });
}

fn describe() {
    metrics::describe_counter!(
        "prompt_registry_http_requests_total",
        "HTTP requests by method, route and status"
    );
    metrics::describe_histogram!(
        "prompt_registry_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by method, route and status"
    );
    metrics::describe_counter!(
        "prompt_registry_runs_total",
        "Runs logged or executed, by status"
    );
    metrics::describe_counter!(
        "prompt_registry_write_failures_total",
        "Writes that failed on the server's side, by kind (storage, unavailable, internal)"
    );
    metrics::describe_counter!("prompt_registry_cache_hits_total", "Resolve cache hits");
    metrics::describe_counter!("prompt_registry_cache_misses_total", "Resolve cache misses");
    metrics::describe_histogram!(
        "prompt_registry_run_commit_seconds",
        metrics::Unit::Seconds,
        "Time of one group commit of runs"
    );
    metrics::describe_histogram!("prompt_registry_run_commit_runs", "Runs per group commit");
    metrics::describe_histogram!(
        "prompt_registry_gateway_overhead_seconds",
        metrics::Unit::Seconds,
        "Time a /v1/chat/completions call took apart from waiting on the upstream"
    );
    metrics::describe_counter!(
        "prompt_registry_gateway_requests_total",
        "Gateway calls logged as runs, by run status"
    );
    metrics::describe_counter!(
        crate::otel::DROPPED_METRIC,
        "Spans not exported over OTLP, by reason (queue_full, export_failed)"
    );
    metrics::describe_counter!(
        crate::otel::EXPORTED_METRIC,
        "Spans the OTLP collector accepted"
    );
}

/// The current metrics in Prometheus' text format.
pub fn render() -> String {
    install();
    match HANDLE.get() {
        Some(Some(h)) => h.render(),
        _ => String::new(),
    }
}
