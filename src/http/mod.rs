//! HTTP API (axum): `app(state)` builds every route, `run` serves them with
//! graceful shutdown. One module per resource.
//!
//! Errors are JSON, `{"error": {"code", "message"}}`, with a stable code;
//! bad input is always a 4xx and internal details never reach the client.

pub mod auth;
mod entries;
mod error;
mod feedback;
mod gaps;
mod health;
pub mod metrics;
mod pages;
pub mod products;
mod reload;
mod search;
mod status;

use std::future::Future;
use std::net::SocketAddr;
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
    /// Keys, roles and rate limits from `kefu.toml`; local mode without.
    pub access: Arc<auth::Access>,
    /// "Most asked" counts for product FAQs, read from the log once a minute.
    pub asked: Arc<products::AskedCache>,
    /// Ranking weights (`[semantic] weight` in kefu.toml).
    pub ranking: Arc<crate::search::Ranking>,
}

impl AppState {
    /// Serves `index` without a query log.
    pub fn new(index: SharedIndex) -> Self {
        AppState::with_log(index, QueryLog::disabled())
    }

    /// Serves `index` and records every search in `log`.
    pub fn with_log(index: SharedIndex, log: QueryLog) -> Self {
        AppState {
            index: Arc::new(index),
            log: Arc::new(log),
            reloader: None,
            metrics: Arc::default(),
            access: Arc::new(auth::Access::local()),
            asked: Arc::default(),
            ranking: Arc::default(),
        }
    }

    /// Requires the keys in `config` (local mode if it has none).
    pub fn with_access(mut self, config: &crate::config::Config) -> Self {
        self.access = Arc::new(auth::Access::new(config));
        self
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
        // `key` (the key's name, never its secret) is filled in once known.
        tracing::info_span!("request", method = %request.method(), route, request_id = id, key = tracing::field::Empty)
    });
    use axum::middleware::from_fn_with_state;
    // Each group of routes states the weakest role that may call it; the
    // route layer refuses everyone else before the handler runs.
    let public = Router::new()
        .merge(search::routes())
        .merge(products::routes())
        .merge(feedback::routes())
        .route_layer(from_fn_with_state(state.clone(), auth::require_public));
    let agent =
        Router::new().merge(entries::routes()).route_layer(from_fn_with_state(state.clone(), auth::require_agent));
    let admin = Router::new()
        .merge(status::routes())
        .merge(gaps::routes())
        .merge(reload::routes())
        .merge(metrics::routes())
        .route_layer(from_fn_with_state(state.clone(), auth::require_admin));
    let router = Router::new()
        .merge(public)
        .merge(agent)
        .merge(admin)
        .merge(health::routes())
        .merge(pages::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), auth::identify))
        .layer(from_fn_with_state(state.clone(), metrics::track));
    // Preflights are answered before any key is asked for; refusals (401,
    // 429) still carry the CORS headers, so the widget can read them.
    let router = match state.access.cors() {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
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
    // The peer address feeds the per-IP rate limit.
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
    let _ = tokio::task::spawn_blocking(move || log.shutdown()).await;
    served
}
