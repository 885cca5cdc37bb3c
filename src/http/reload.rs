//! `POST /v1/admin/reload`: rebuild from `kb/` now, without waiting for the
//! file watcher (after a deploy, or where notifications do not work).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::error::ApiError;
use super::AppState;
use crate::reload::Outcome;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/admin/reload", post(reload))
}

async fn reload(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(reloader) = state.reloader.clone() else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "reload_unavailable",
            message: "this server does not follow a knowledge-base folder".into(),
        });
    };
    // A rebuild takes from milliseconds to seconds: off the async workers.
    let outcome =
        tokio::task::spawn_blocking(move || reloader.reload("admin")).await.map_err(|err| ApiError::internal(&err))?;
    let revision = state.index.current().revision.clone();
    Ok(match outcome {
        Outcome::Unchanged { .. } | Outcome::Reloaded { .. } => Json(outcome).into_response(),
        Outcome::Invalid { errors, error_count } => {
            let message =
                format!("the knowledge base has {error_count} error(s); still serving the last good index {revision}");
            let body = json!({
                "error": { "code": "kb_invalid", "message": message },
                "errors": errors,
                "error_count": error_count,
                "revision": revision,
            });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
        Outcome::Failed { message } => {
            tracing::error!("reload failed: {message}");
            let body = json!({
                "error": { "code": "reload_failed", "message": format!("reload failed: {message}") },
                "revision": revision,
            });
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    })
}
