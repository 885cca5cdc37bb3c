//! `POST /v1/feedback`: whether an answer helped (the widget's 有用/没用,
//! an agent copying an answer into the chat).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::search::parse_source;
use super::AppState;
use crate::model::Audience;
use crate::querylog::{now_ms, FeedbackEvent};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/feedback", post(feedback))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    query_id: String,
    entry_id: String,
    helpful: bool,
    #[serde(default)]
    source: Option<String>,
}

async fn feedback(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    body: Result<Json<FeedbackBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = caller.map(|Extension(c)| c);
    let public_caller = caller.as_ref().is_some_and(Caller::public_only);
    let Json(body) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    if uuid::Uuid::parse_str(body.query_id.trim()).is_err() {
        return Err(ApiError::bad_request(
            "invalid_query_id",
            "query_id must be the query_id of a search answer (a UUID)",
        ));
    }
    // A public key cannot tell an internal entry from a missing one.
    let visible = state.index.current().entry(&body.entry_id).is_some_and(|entry| {
        !public_caller || (entry.audience == Audience::Public && entry.active_at(jiff::Timestamp::now()))
    });
    if !visible {
        return Err(ApiError::not_found("entry_not_found", format!("no entry with id {:?}", body.entry_id)));
    }
    let source = parse_source(body.source.as_deref(), caller.as_ref())?;
    if state.log.data_dir().is_none() {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "query_log_disabled",
            message: "the query log is off (--no-query-log), so feedback cannot be recorded".into(),
        });
    }
    let event = FeedbackEvent {
        at_ms: now_ms(),
        query_id: body.query_id.trim().to_string(),
        entry_id: body.entry_id,
        helpful: body.helpful,
        source,
    };
    if !state.log.record_feedback(event) {
        let busy = ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "busy",
            message: "the query log is falling behind; try again in a second".into(),
        };
        return Ok(([(header::RETRY_AFTER, "1")], busy).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": true }))).into_response())
}
