//! `GET /v1/search`: ranked answers to a buyer's question.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::AppState;
use crate::config::Role;
use crate::model::{Confidence, Hit, Platform};
use crate::querylog::{now_ms, SearchEvent, Source};
use crate::search::{Evidence, SearchRequest, SearchResults};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/search", get(search))
}

/// Query parameters, all as text so that every mistake gets a precise message.
#[derive(Debug, Deserialize)]
struct SearchParams {
    q: Option<String>,
    limit: Option<String>,
    product: Option<String>,
    platform: Option<String>,
    audience: Option<String>,
    explain: Option<String>,
    source: Option<String>,
}

/// The body of a search answer; `kefu search --json` prints the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Identifies this search in the query log and in feedback.
    pub query_id: String,
    pub confidence: Confidence,
    pub took_ms: f64,
    pub hits: Vec<Hit>,
    /// How the confidence was decided; only with `explain=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Evidence>,
}

impl SearchResponse {
    pub fn new(results: SearchResults) -> Self {
        SearchResponse {
            query_id: uuid::Uuid::now_v7().to_string(),
            confidence: results.confidence,
            took_ms: (results.took.as_secs_f64() * 1e6).round() / 1e3,
            hits: results.hits,
            explain: None,
        }
    }
}

/// `audience=public` restricts to public entries; `internal`/absent does not.
pub(super) fn parse_audience(value: Option<&str>) -> Result<bool, ApiError> {
    match value.map(str::trim) {
        None | Some("") | Some("internal") | Some("all") => Ok(false),
        Some("public") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "unknown_audience",
            format!("unknown audience {other:?} (expected public or internal)"),
        )),
    }
}

/// Who is asking: `widget`, `agent` or `api`. A public key always counts
/// as the widget; otherwise the caller may say, and the key's role decides
/// when it does not (agent keys: `agent`; admin keys and local mode: `api`).
pub(super) fn parse_source(value: Option<&str>, caller: Option<&Caller>) -> Result<Source, ApiError> {
    match caller {
        Some(Caller::Key { role: Role::Public, .. }) => return Ok(Source::Widget),
        Some(Caller::Key { role: Role::Agent, .. }) if value.is_none_or(|v| v.trim().is_empty()) => {
            return Ok(Source::Agent)
        }
        _ => {}
    }
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(Source::Api),
        Some(text) => match text.parse::<Source>() {
            Ok(Source::Cli) | Err(_) => Err(ApiError::bad_request(
                "unknown_source",
                format!("unknown source {text:?} (expected widget, agent or api)"),
            )),
            Ok(source) => Ok(source),
        },
    }
}

/// A public key gets answers as sanitised HTML only: the Markdown may hold
/// raw HTML as the copywriter wrote it, and a product page must never be
/// one careless `innerHTML` away from running it.
pub(super) fn hide_markdown<'a>(answers: impl Iterator<Item = &'a mut String>) {
    for markdown in answers {
        markdown.clear();
    }
}

fn parse_flag(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value.map(str::trim) {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => {
            Err(ApiError::bad_request("invalid_parameters", format!("{name} must be true or false, got {other:?}")))
        }
    }
}

fn parse_limit(value: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(10);
    };
    text.parse::<usize>().ok().filter(|n| (1..=crate::search::MAX_LIMIT).contains(n)).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_limit",
            format!("limit must be a whole number from 1 to {}, got {text:?}", crate::search::MAX_LIMIT),
        )
    })
}

async fn search(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request("invalid_parameters", e.body_text()))?;
    let caller = caller.map(|Extension(c)| c);
    // A public key sees what a buyer sees, whatever it asks for.
    let public_caller = caller.as_ref().is_some_and(Caller::public_only);
    let query = params.q.as_deref().unwrap_or("");
    let platform = match params.platform.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(p.parse::<Platform>().map_err(|e| ApiError::bad_request("unknown_platform", e.to_string()))?),
        None => None,
    };
    let request = SearchRequest {
        query,
        limit: parse_limit(params.limit.as_deref())?,
        product: params.product.as_deref().map(str::trim).filter(|p| !p.is_empty()),
        platform,
        public_only: parse_audience(params.audience.as_deref())? || public_caller,
        at: None,
    };
    let explain = parse_flag("explain", params.explain.as_deref())?;
    if explain && public_caller {
        // The evidence names runner-up entries, internal ones included.
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: "explain is for agent and admin keys".into(),
        });
    }
    let source = parse_source(params.source.as_deref(), caller.as_ref())?;
    let index = state.index.current();
    let results = index.search_concurrently(&request, &state.ranking).await?;
    let evidence = results.evidence.clone();
    let mut response = SearchResponse::new(results);
    state.metrics.search(response.confidence, source);
    // Queued, never awaited: the writer masks and stores it.
    state.log.record_search(SearchEvent {
        query_id: response.query_id.clone(),
        at_ms: now_ms(),
        source,
        query: query.to_string(),
        product: request.product.map(str::to_string),
        platform: request.platform,
        public_only: request.public_only,
        hits: response.hits.iter().map(|h| (h.id.clone(), h.score)).collect(),
        confidence: response.confidence,
        latency_us: (response.took_ms * 1000.0) as u64,
        revision: index.revision.clone(),
    });
    if explain {
        response.explain = evidence;
    }
    if public_caller {
        hide_markdown(response.hits.iter_mut().map(|h| &mut h.answer_markdown));
    }
    Ok(Json(response))
}
