//! `GET /healthz`: liveness plus what is being served.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(state): State<AppState>) -> Json<Value> {
    let index = state.index.current();
    Json(json!({
        "status": "ok",
        "revision": index.revision,
        "entries": index.entries().len(),
        "built_at_ms": index.manifest.built_at_ms,
    }))
}
