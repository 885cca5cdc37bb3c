//! HTTP API (axum): `app(state)` builds every route, `run` serves them with
//! graceful shutdown. One module per resource.
//!
//! Errors are JSON, `{"error": {"code", "message"}}`, with a stable code;
//! bad input is always a 4xx and internal details never reach the client.

mod entries;
mod error;
mod feedback;
mod gaps;
mod health;
pub mod metrics;
mod pages;
mod reload;
mod search;
mod status;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::index::SharedIndex;
use crate::querylog::QueryLog;
use crate::reload::Reloader;
pub use error::ApiError;
pub use search::SearchResponse;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The index being served; swapped whole when a new one is built.
    pub index: Arc<SharedIndex>,
    /// Where searches and feedback are recorded (possibly disabled).
    pub log: Arc<QueryLog>,
    /// Rebuilds the index from `kb/`; `None` when the server has no
    /// knowledge-base folder to follow (tests serving a fixed index).
    pub reloader: Option<Arc<Reloader>>,
    /// Request and search counters for `GET /metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    /// Serves `index` without a query log.
    pub fn new(index: SharedIndex) -> Self {
        AppState::with_log(index, QueryLog::disabled())
    }

    /// Serves `index` and records every search in `log`.
    pub fn with_log(index: SharedIndex, log: QueryLog) -> Self {
        AppState { index: Arc::new(index), log: Arc::new(log), reloader: None, metrics: Arc::default() }
    }

    /// Reloads from `kb_dir` into `index_dir` on demand (and, with
    /// [`Reloader::watch`], on every edit).
    pub fn with_reloader(mut self, kb_dir: &std::path::Path, index_dir: &std::path::Path) -> Self {
        self.reloader = Some(Arc::new(Reloader::new(kb_dir, index_dir, self.index.clone())));
        self
    }
}

/// The whole HTTP API. Tests call it through `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    // Spans name the route pattern, never the URL: query strings carry what
    // buyers typed, which must not reach the logs. The request id (the
    // caller's `x-request-id`, or a new UUID) is in every span and echoed in
    // the response, so a complaint can be traced to its log lines.
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request| {
        let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
        let id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("");
        tracing::info_span!("request", method = %request.method(), route, request_id = id)
    });
    Router::new()
        .merge(search::routes())
        .merge(entries::routes())
        .merge(health::routes())
        .merge(status::routes())
        .merge(feedback::routes())
        .merge(gaps::routes())
        .merge(reload::routes())
        .merge(metrics::routes())
        .merge(pages::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        // Outermost first: the id is set before the span opens, and copied
        // onto the response last.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` completes, lets in-flight
/// requests finish, then flushes the query log.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let log = state.log.clone();
    let served = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await;
    let _ = tokio::task::spawn_blocking(move || log.shutdown()).await;
    served
}
