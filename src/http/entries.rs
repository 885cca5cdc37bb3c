//! `GET /v1/entries/{id}`: one entry, for agents opening a hit.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::error::ApiError;
use super::search::parse_audience;
use super::AppState;
use crate::model::{Audience, Entry};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/entries/{id}", get(get_entry))
}

#[derive(Debug, Deserialize)]
struct EntryParams {
    audience: Option<String>,
}

async fn get_entry(
    State(state): State<AppState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<EntryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Entry>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::bad_request("invalid_parameters", e.body_text()))?;
    let Query(params) = params.map_err(|e| ApiError::bad_request("invalid_parameters", e.body_text()))?;
    let public_only = parse_audience(params.audience.as_deref())?;
    let index = state.index.current();
    match index.entry(&id) {
        // A public caller gets the same answer for an internal entry as for
        // a missing one, so internal ids cannot be probed.
        // Buyers see an entry only while it is valid (an expired 双十一 rule
        // must not be linked from a product page); agents see its dates.
        Some(entry)
            if !(public_only && (entry.audience == Audience::Internal || !entry.active_at(jiff::Timestamp::now()))) =>
        {
            Ok(Json(entry.clone()))
        }
        _ => Err(ApiError::not_found("entry_not_found", format!("no entry with id `{id}`"))),
    }
}
