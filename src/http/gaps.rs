//! The FAQ gap report: `GET /v1/gaps` (JSON), `GET /v1/gaps.csv` and the
//! copywriters' page `GET /admin/gaps`.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::error::ApiError;
use super::AppState;
use crate::gaps::render::{self, HtmlFilters};
use crate::gaps::{self, GapsError, Report, ReportRequest, StatusFilter};
use crate::model::Platform;
use crate::querylog::{now_ms, Filter, Source, Store};

/// Longest the report waits for queued searches to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// Most clusters one report lists.
const MAX_CLUSTERS: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/gaps", get(gaps_json))
        .route("/v1/gaps.csv", get(gaps_csv))
        .route("/admin/gaps", get(gaps_html))
}

#[derive(Debug, Default, Deserialize)]
struct GapParams {
    days: Option<String>,
    since: Option<String>,
    until: Option<String>,
    product: Option<String>,
    platform: Option<String>,
    source: Option<String>,
    status: Option<String>,
    limit: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn parse(params: &GapParams) -> Result<ReportRequest, ApiError> {
    let bad = |code: &'static str, message: String| ApiError::bad_request(code, message);
    let days = match non_empty(&params.days) {
        Some(text) => Some(text.parse::<u32>().ok().filter(|d| (1..=3650).contains(d)).ok_or_else(|| {
            bad("invalid_window", format!("days must be a whole number from 1 to 3650, got {text:?}"))
        })?),
        None => None,
    };
    let (since_ms, until_ms) = gaps::window(now_ms(), days, non_empty(&params.since), non_empty(&params.until))
        .map_err(|e| bad("invalid_window", e.to_string()))?;
    let platform = match non_empty(&params.platform) {
        Some(p) => {
            Some(p.parse::<Platform>().map_err(|e| bad("unknown_platform", e.to_string()))?.as_str().to_string())
        }
        None => None,
    };
    let source = match non_empty(&params.source) {
        Some(s) => Some(s.parse::<Source>().map_err(|e| bad("unknown_source", e.to_string()))?),
        None => None,
    };
    let status =
        non_empty(&params.status).unwrap_or("all").parse::<StatusFilter>().map_err(|e| bad("invalid_parameters", e))?;
    let limit = match non_empty(&params.limit) {
        Some(text) => text.parse::<usize>().ok().filter(|n| (1..=MAX_CLUSTERS).contains(n)).ok_or_else(|| {
            bad("invalid_limit", format!("limit must be a whole number from 1 to {MAX_CLUSTERS}, got {text:?}"))
        })?,
        None => 200,
    };
    Ok(ReportRequest {
        filter: Filter {
            since_ms,
            until_ms,
            product: non_empty(&params.product).map(str::to_string),
            platform,
            source,
        },
        status,
        limit,
        similarity: gaps::cluster::SAME_QUESTION,
    })
}

/// Builds the report off the async runtime: it reads SQLite and re-runs
/// searches.
async fn build(state: &AppState, params: Result<Query<GapParams>, QueryRejection>) -> Result<Report, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request("invalid_parameters", e.body_text()))?;
    let request = parse(&params)?;
    let Some(data_dir) = state.log.data_dir().map(|p| p.to_path_buf()) else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "query_log_disabled",
            message: "the query log is off (--no-query-log), so there are no gaps to report".into(),
        });
    };
    let log = state.log.clone();
    let index = state.index.current();
    let joined = tokio::task::spawn_blocking(move || -> Result<Report, GapsError> {
        // Searches made just before this report should be in it.
        log.flush(FLUSH_WAIT);
        let store = Store::open_existing(&data_dir)?;
        gaps::report(&store, &index, &request, now_ms())
    })
    .await;
    match joined {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(GapsError::BadWindow(message))) => Err(ApiError::bad_request("invalid_window", message)),
        Ok(Err(err)) => Err(ApiError::internal(&err)),
        Err(err) => Err(ApiError::internal(&err)),
    }
}

async fn gaps_json(
    State(state): State<AppState>,
    params: Result<Query<GapParams>, QueryRejection>,
) -> Result<Json<Report>, ApiError> {
    Ok(Json(build(&state, params).await?))
}

async fn gaps_csv(
    State(state): State<AppState>,
    params: Result<Query<GapParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let report = build(&state, params).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"kefu-gaps.csv\""),
        ],
        render::csv(&report),
    )
        .into_response())
}

async fn gaps_html(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    params: Result<Query<GapParams>, QueryRejection>,
) -> Result<Html<String>, ApiError> {
    let echo = params.as_ref().map(|Query(p)| p).ok();
    let field = |f: fn(&GapParams) -> &Option<String>| echo.and_then(|p| non_empty(f(p))).unwrap_or("").to_string();
    let filters = HtmlFilters {
        days: echo.and_then(|p| non_empty(&p.days)).unwrap_or("30").to_string(),
        product: field(|p| &p.product),
        platform: field(|p| &p.platform),
        source: field(|p| &p.source),
        status: echo.and_then(|p| non_empty(&p.status)).unwrap_or("all").to_string(),
        query_string: raw.unwrap_or_default(),
    };
    let report = build(&state, params).await?;
    Ok(Html(render::html(&report, &filters)))
}
