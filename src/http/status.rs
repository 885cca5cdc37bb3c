//! `GET /v1/status`: what is being served, whether `kb/` could be reloaded
//! (the last good revision and the errors that block the current one), and
//! how the query log is doing.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/status", get(status))
}

async fn status(State(state): State<AppState>) -> Json<Value> {
    let index = state.index.current();
    Json(json!({
        "index": {
            "revision": index.revision,
            "entries": index.entries().len(),
            "phrasings": index.manifest.phrasings,
            "built_at": crate::gaps::format_time(index.manifest.built_at_ms as i64),
            "build_ms": index.manifest.build_ms,
            "fingerprint": index.manifest.fingerprint,
        },
        "query_log": state.log.stats(),
        "reload": state.reloader.as_ref().map(|r| r.status()),
    }))
}
