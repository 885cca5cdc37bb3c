//! `GET /metrics`: Prometheus metrics, in the OpenMetrics text format
//! (Prometheus scrapes it as is).
//!
//! Two kinds of figure, kept apart on purpose:
//! - **events** counted on the request path (requests and their latency per
//!   route, method and status; searches per confidence and source), in
//!   `prometheus-client` families that cost a hash lookup and an atomic add;
//! - **state** read at scrape time from what already keeps it (the served
//!   index's manifest, the reloader's counters, the query log's counters,
//!   the process's resident memory), so nothing is counted twice and a
//!   figure can never drift from `/v1/status`.
//!
//! Labels never carry query text: routes are patterns (`/v1/entries/{id}`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::AppState;
use crate::model::Confidence;
use crate::querylog::{LogStats, Source};
use crate::search::EncodingStats;

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SearchLabels {
    confidence: &'static str,
    source: &'static str,
}

/// The request-path metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    searches: Family<SearchLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 50 µs to about 1.6 s, doubling: a search takes well under a
        // millisecond on a small knowledge base and a few on a large one.
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_05, 2.0, 16))) as fn() -> Histogram,
        );
        let searches = Family::<SearchLabels, Counter>::default();
        let mut registry = Registry::default();
        registry.register(
            "kefu_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        registry.register(
            "kefu_http_request_duration_seconds",
            "Time from request to response headers, by route pattern, method and status",
            latency.clone(),
        );
        registry.register(
            "kefu_searches",
            "Searches answered, by confidence of the top hit and by source",
            searches.clone(),
        );
        Metrics { registry, requests, latency, searches }
    }
}

impl Metrics {
    fn observe(&self, labels: RequestLabels, elapsed: Duration) {
        self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts one answered search.
    pub fn search(&self, confidence: Confidence, source: Source) {
        let confidence = match confidence {
            Confidence::High => "high",
            Confidence::Low => "low",
            Confidence::None => "none",
        };
        self.searches.get_or_create(&SearchLabels { confidence, source: source.as_str() }).inc();
    }
}

/// Middleware: times every request and counts it under its route pattern.
pub(super) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    // Standard methods only: a label per invented method would let any
    // caller grow the metrics without bound.
    let method = match *request.method() {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::HEAD | Method::OPTIONS | Method::PATCH => {
            request.method().as_str()
        }
        _ => "other",
    }
    .to_string();
    let response = next.run(request).await;
    let labels = RequestLabels { route, method, status: response.status().as_u16() };
    state.metrics.observe(labels, started.elapsed());
    response
}

async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = Snapshot::of(&state);
    let mut scrape = Registry::default();
    scrape.register_collector(Box::new(snapshot));
    let mut body = String::with_capacity(8 * 1024);
    let encoded = prometheus_client::encoding::text::encode_registry(&mut body, &state.metrics.registry)
        .and_then(|()| prometheus_client::encoding::text::encode_registry(&mut body, &scrape))
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut body));
    if let Err(err) = encoded {
        return super::ApiError::internal(&err).into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

/// State figures read at scrape time.
#[derive(Debug)]
struct Snapshot {
    entries: i64,
    phrasings: i64,
    timed: i64,
    build_seconds: f64,
    built_at_seconds: f64,
    reload: Option<(u64, u64, bool)>,
    log: LogStats,
    encoding: Option<EncodingStats>,
    resident_bytes: Option<i64>,
}

impl Snapshot {
    fn of(state: &AppState) -> Snapshot {
        let index = state.index.current();
        let m = &index.manifest;
        Snapshot {
            entries: m.entries as i64,
            phrasings: m.phrasings as i64,
            timed: m.timed as i64,
            build_seconds: m.build_ms as f64 / 1e3,
            built_at_seconds: m.built_at_ms as f64 / 1e3,
            reload: state.reloader.as_ref().map(|r| {
                let status = r.status();
                (status.reloads, status.failures, status.error_count == 0 && status.failure.is_none())
            }),
            log: state.log.stats(),
            encoding: index.encoding_stats(),
            resident_bytes: resident_bytes(),
        }
    }
}

/// Resident set size of this process (Linux; `None` elsewhere).
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(&mut e, "kefu_index_entries", "Entries in the served index", self.entries)?;
        gauge(&mut e, "kefu_index_phrasings", "Phrasings (标准问 and 相似问) in the served index", self.phrasings)?;
        gauge(&mut e, "kefu_index_timed_entries", "Entries with a validity window in the served index", self.timed)?;
        gauge(&mut e, "kefu_index_build_seconds", "How long the served index took to build", self.build_seconds)?;
        gauge(
            &mut e,
            "kefu_index_built_timestamp_seconds",
            "When the served index was built (Unix time)",
            self.built_at_seconds,
        )?;
        if let Some((reloads, failures, valid)) = self.reload {
            counter(&mut e, "kefu_reloads", "Reloads that built and swapped in a new index", reloads)?;
            counter(
                &mut e,
                "kefu_reload_failures",
                "Reloads that kept the last good index (invalid kb or build error)",
                failures,
            )?;
            gauge(
                &mut e,
                "kefu_kb_valid",
                "1 when the last reload found the knowledge base valid, else 0",
                i64::from(valid),
            )?;
        }
        let log = &self.log;
        gauge(&mut e, "kefu_query_log_enabled", "1 when searches and feedback are logged", i64::from(log.enabled))?;
        gauge(&mut e, "kefu_query_log_queue_depth", "Events waiting for the query log writer", log.queued as i64)?;
        counter(&mut e, "kefu_query_log_accepted", "Events queued for the query log", log.accepted)?;
        counter(&mut e, "kefu_query_log_written", "Events committed to the query log", log.written)?;
        counter(&mut e, "kefu_query_log_dropped", "Events not logged because the queue was full", log.dropped)?;
        counter(&mut e, "kefu_query_log_failed", "Events lost because a database write failed", log.failed)?;
        if let Some(encoding) = self.encoding {
            counter(
                &mut e,
                "kefu_query_encodings",
                "Queries the encoding thread encoded for fused ranking since the served index was opened",
                encoding.encoded,
            )?;
            counter(
                &mut e,
                "kefu_query_encoding_batches",
                "Batches those queries were encoded in (queries per batch grow with the load)",
                encoding.batches,
            )?;
        }
        if let Some(bytes) = self.resident_bytes {
            gauge(&mut e, "process_resident_memory_bytes", "Resident memory of the kefu process", bytes)?;
        }
        Ok(())
    }
}

/// Shared handle, as kept in [`AppState`].
pub type SharedMetrics = Arc<Metrics>;
