//! `GET /v1/products/{id}/faq`: what the widget shows before anyone types.
//!
//! A product's FAQ is its own public entries plus the shop-wide public ones
//! (delivery, returns, payment), most asked first. "Asked" counts the
//! questions each entry answered with high confidence in the last 30 days,
//! for this product or none in particular; those counts come from the query
//! log and are cached for a minute per product, so a busy product page
//! costs one SQLite query a minute, not one per page view.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::AppState;
use crate::model::{Audience, Entry, Kind, Platform};
use crate::querylog::store::Store;
use crate::querylog::{now_ms, store::DAY_MS};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/products/{id}/faq", get(product_faq))
}

/// How far back "most asked" looks.
const ASKED_DAYS: i64 = 30;
/// How long counts are reused before the log is asked again.
const CACHE_FOR: Duration = Duration::from_secs(60);
/// Products whose counts are kept; the table is cleared beyond it.
const CACHE_PRODUCTS: usize = 2_000;
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 50;

#[derive(Debug, Deserialize)]
struct FaqParams {
    platform: Option<String>,
    limit: Option<String>,
}

/// One FAQ item, as much as a product page needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaqItem {
    pub id: String,
    pub question: String,
    pub title: String,
    pub kind: Kind,
    /// Empty for public keys (see the search route): use `answer_html`.
    pub answer_markdown: String,
    /// Sanitised at index time: safe on a product page.
    pub answer_html: String,
    /// Questions this entry answered in the last 30 days.
    pub asked: u64,
}

/// The body of `GET /v1/products/{id}/faq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaqResponse {
    pub product: String,
    pub platform: Option<Platform>,
    /// Feedback on these items refers to this id (there was no search).
    pub query_id: String,
    pub entries: Vec<FaqItem>,
}

/// Entry id → questions it answered.
type Counts = Arc<HashMap<String, u64>>;

/// Per-product "asked" counts with the time they were read.
#[derive(Default)]
pub struct AskedCache(Mutex<HashMap<String, (Instant, Counts)>>);

impl AskedCache {
    fn fresh(&self, product: &str) -> Option<Counts> {
        let table = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        table.get(product).filter(|(at, _)| at.elapsed() < CACHE_FOR).map(|(_, counts)| counts.clone())
    }

    fn store(&self, product: &str, counts: Counts) {
        let mut table = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if table.len() >= CACHE_PRODUCTS {
            table.clear();
        }
        table.insert(product.to_string(), (Instant::now(), counts));
    }
}

async fn product_faq(
    State(state): State<AppState>,
    caller: Option<axum::Extension<super::auth::Caller>>,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<FaqParams>, QueryRejection>,
) -> Result<Json<FaqResponse>, ApiError> {
    let Path(product) = id.map_err(|e| ApiError::bad_request("invalid_parameters", e.body_text()))?;
    let Query(params) = params.map_err(|e| ApiError::bad_request("invalid_parameters", e.body_text()))?;
    let product = product.trim().to_string();
    if product.is_empty() || product.chars().count() > 100 {
        return Err(ApiError::bad_request("invalid_parameters", "the product id must be 1 to 100 characters"));
    }
    let platform = match params.platform.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(p.parse::<Platform>().map_err(|e| ApiError::bad_request("unknown_platform", e.to_string()))?),
        None => None,
    };
    let limit = match params.limit.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(text) => text.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            ApiError::bad_request("invalid_limit", format!("limit must be a whole number from 1 to {MAX_LIMIT}"))
        })?,
    };
    let asked = asked_counts(&state, &product).await;
    let index = state.index.current();
    let now = jiff::Timestamp::now();
    // Always the buyer's view, whoever asks: this is the product page's FAQ.
    let mut items: Vec<(&Entry, u64, usize)> = index
        .entries()
        .iter()
        .enumerate()
        .filter(|(_, e)| e.audience == Audience::Public && e.active_at(now))
        .filter(|(_, e)| e.applies_to_product(&product))
        .filter(|(_, e)| platform.is_none_or(|p| e.applies_to_platform(p)))
        .map(|(order, e)| (e, asked.get(&e.id).copied().unwrap_or(0), order))
        .collect();
    // Most asked first; then the product's own entries before shop-wide
    // ones; then the order copywriters wrote them in.
    items.sort_by_key(|(e, asked, order)| (std::cmp::Reverse(*asked), e.products.is_empty(), *order));
    let entries = items
        .into_iter()
        .take(limit)
        .map(|(e, asked, _)| FaqItem {
            id: e.id.clone(),
            question: e.question.clone(),
            title: e.title.clone(),
            kind: e.kind,
            answer_markdown: e.answer_markdown.clone(),
            answer_html: e.answer_html.clone(),
            asked,
        })
        .collect();
    let mut entries: Vec<FaqItem> = entries;
    if caller.is_some_and(|axum::Extension(c)| c.public_only()) {
        super::search::hide_markdown(entries.iter_mut().map(|e| &mut e.answer_markdown));
    }
    Ok(Json(FaqResponse { product, platform, query_id: uuid::Uuid::now_v7().to_string(), entries }))
}

/// The cached counts, or fresh ones from the log; none without a log. A log
/// that cannot be read costs the ordering, never the FAQ.
async fn asked_counts(state: &AppState, product: &str) -> Counts {
    if let Some(counts) = state.asked.fresh(product) {
        return counts;
    }
    let Some(data_dir) = state.log.data_dir().map(PathBuf::from) else {
        return Arc::default();
    };
    let key = product.to_string();
    let since = now_ms() - ASKED_DAYS * DAY_MS;
    let read = tokio::task::spawn_blocking(move || Store::open_existing(&data_dir)?.asked_counts(since, &key)).await;
    let counts = match read {
        Ok(Ok(rows)) => Arc::new(rows.into_iter().collect::<HashMap<_, _>>()),
        Ok(Err(crate::querylog::store::StoreError::Missing(_))) => Arc::default(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "cannot read asked counts from the query log");
            Arc::default()
        }
        Err(err) => {
            tracing::warn!(error = %err, "asked-count task failed");
            Arc::default()
        }
    };
    state.asked.store(product, counts.clone());
    counts
}
