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

/// Whether ranking is fused with the sentence encoder, and why not.
fn semantic_status(index: &crate::index::SearchIndex, weight: f32) -> Value {
    match index.semantic_model() {
        Some(model) if weight > 0.0 => json!({
            "mode": "fused",
            "model": model,
            "weight": weight,
            "vectors": index.manifest.semantic.as_ref().map(|s| s.rows),
        }),
        _ => {
            let reason = if weight <= 0.0 {
                "[semantic] weight is 0".to_string()
            } else if let Some(reason) = crate::semantic::off_reason() {
                reason
            } else {
                "the index has no vectors from this model (it is rebuilt on the next reload)".to_string()
            };
            json!({ "mode": "lexical", "reason": reason })
        }
    }
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
        "semantic": semantic_status(&index, state.ranking.semantic),
        "query_log": state.log.stats(),
        "reload": state.reloader.as_ref().map(|r| r.status()),
    }))
}
