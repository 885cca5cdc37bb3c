//! FAQ gaps: the buyer questions the knowledge base does not answer, grouped
//! into clusters of paraphrases and turned into work for copywriters.
//!
//! A **gap** is a logged search answered with `low` or `none` confidence.
//! The report:
//! 1. reads the gaps in a time window from the query log, grouped by their
//!    normalised text;
//! 2. clusters them ([`cluster`]);
//! 3. re-runs each cluster's questions against the index being served: a
//!    cluster whose questions now get a `high` answer was **resolved** by
//!    an edit of `kb/`; otherwise it names the **nearest** entry and
//!    suggests adding the questions to it as 相似问 (when they are as close
//!    to it as paraphrases are to each other) or writing a new entry;
//! 4. adds what else tells copywriters the product page falls short:
//!    questions buyers still ask agents although a public entry of the
//!    product answers them, and answers that feedback says do not help.

pub mod cluster;
pub mod render;

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::index::SearchIndex;
use crate::model::{Audience, Confidence, Platform};
use crate::querylog::store::{QuestionRow, DAY_MS, UTC8_MS};
use crate::querylog::{Filter, Source, Store, StoreError};
use crate::search::SearchRequest;
use cluster::{Vector, Vectorizer};

/// Most-asked questions of one cluster that are re-run against the index.
const RERUN_PER_CLUSTER: usize = 5;
/// Distinct questions clustered per report: the most-asked ones. The long
/// tail beyond them (each asked once or twice) would make a report of tens
/// of seconds for no insight.
pub const MAX_QUESTIONS: usize = 5000;
/// Fewest votes before an answer can be called unsatisfying.
const MIN_FEEDBACK: u64 = 2;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GapsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    BadWindow(String),
}

/// Which clusters to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    #[default]
    All,
    Open,
    Resolved,
}

impl std::str::FromStr for StatusFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" | "all" => Ok(StatusFilter::All),
            "open" => Ok(StatusFilter::Open),
            "resolved" => Ok(StatusFilter::Resolved),
            other => Err(format!("unknown status {other:?} (expected open, resolved or all)")),
        }
    }
}

/// What the report covers.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub filter: Filter,
    pub status: StatusFilter,
    /// Most clusters listed.
    pub limit: usize,
    /// Cosine similarity at which questions are the same question
    /// (default [`cluster::SAME_QUESTION`]).
    pub similarity: f32,
}

impl ReportRequest {
    /// Every cluster in the window, with the default similarity.
    pub fn new(filter: Filter) -> Self {
        ReportRequest { filter, status: StatusFilter::All, limit: usize::MAX, similarity: cluster::SAME_QUESTION }
    }
}

/// A time window: `days` back from now, or explicit dates.
pub fn window(
    now_ms: i64,
    days: Option<u32>,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(i64, i64), GapsError> {
    let until_ms = match until {
        Some(text) => parse_time(text, true)?,
        None => now_ms + 1,
    };
    let since_ms = match (since, days) {
        (Some(text), _) => parse_time(text, false)?,
        (None, Some(0)) => return Err(GapsError::BadWindow("days must be at least 1".into())),
        (None, Some(days)) => until_ms - i64::from(days) * DAY_MS,
        (None, None) => until_ms - 30 * DAY_MS,
    };
    if since_ms >= until_ms {
        return Err(GapsError::BadWindow("the window is empty: since must be before until".into()));
    }
    Ok((since_ms, until_ms))
}

/// `2026-11-11` (a day in China; `until` means the end of that day) or an
/// RFC 3339 time.
fn parse_time(text: &str, end_of_day: bool) -> Result<i64, GapsError> {
    let text = text.trim();
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        let start = date
            .to_zoned_datetime(china())
            .map_err(|e| GapsError::BadWindow(format!("{text}: {e}")))?
            .timestamp()
            .as_millisecond();
        return Ok(if end_of_day { start + DAY_MS } else { start });
    }
    text.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).map_err(|_| {
        GapsError::BadWindow(format!("{text:?} is not a date (2026-11-11) or a time (2026-11-11T20:00:00+08:00)"))
    })
}

fn china() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::fixed(jiff::tz::offset(8))
}

/// A time as shown in reports: RFC 3339 in China's time zone.
pub fn format_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned_datetime(china()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        Err(_) => ms.to_string(),
    }
}

fn format_day(day: i64) -> String {
    let time = format_time(day * DAY_MS - UTC8_MS);
    time.get(..10).unwrap_or(&time).to_string()
}

/// The whole report, as `GET /v1/gaps` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub generated_at: String,
    pub since: String,
    pub until: String,
    /// The index the clusters were re-run against.
    pub revision: String,
    pub totals: Totals,
    pub gaps: Vec<Gap>,
    pub asked_despite_answered: Vec<ProductQuestions>,
    pub unsatisfying: Vec<EntryFeedback>,
    pub days: Vec<Day>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    pub searches: u64,
    pub gaps: u64,
    pub clusters: usize,
    pub open: usize,
    pub resolved: usize,
}

/// One missing question, asked in one or more ways.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gap {
    /// Stable while the representative question stays the same.
    pub id: String,
    pub representative: String,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub products: Vec<String>,
    pub platforms: Vec<String>,
    pub sources: Vec<String>,
    pub questions: Vec<QuestionCount>,
    pub nearest: Option<Nearest>,
    pub suggestion: Suggestion,
    pub status: Status,
    /// The entry that now answers the cluster, when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<EntryRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionCount {
    pub text: String,
    pub count: u64,
}

/// The existing entry closest to a cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nearest {
    pub id: String,
    pub question: String,
    /// Search score of the entry for the representative question.
    pub score: f32,
    /// Cosine similarity between the cluster and the entry's closest
    /// phrasing, on the scale clustering uses (0–1).
    pub similarity: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suggestion {
    /// Add the questions as 相似问 of the nearest entry.
    AddSimilar,
    /// Nothing answers this: write a new entry.
    NewEntry,
    /// Nothing to do: the knowledge base answers it now.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    pub id: String,
    pub question: String,
}

/// Questions buyers asked agents that a public entry of a product answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductQuestions {
    pub product: String,
    pub count: u64,
    pub entries: Vec<AnsweredEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnsweredEntry {
    pub id: String,
    pub question: String,
    pub count: u64,
    pub questions: Vec<QuestionCount>,
}

/// An answer that feedback says does not help.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryFeedback {
    pub id: String,
    pub question: String,
    pub helpful: u64,
    pub unhelpful: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    pub day: String,
    pub searches: u64,
    pub gaps: u64,
}

/// One distinct (normalised) question with everything known about it.
#[derive(Debug, Default)]
struct Question {
    normalized: String,
    texts: HashMap<String, u64>,
    count: u64,
    first_ms: i64,
    last_ms: i64,
    products: HashMap<String, u64>,
    platforms: HashMap<String, u64>,
    sources: BTreeSet<String>,
}

impl Question {
    fn text(&self) -> &str {
        most_common(&self.texts).unwrap_or(&self.normalized)
    }
}

fn most_common(map: &HashMap<String, u64>) -> Option<&str> {
    map.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(k, _)| k.as_str())
}

/// Builds the report from the query log and the index being served.
pub fn report(store: &Store, index: &SearchIndex, request: &ReportRequest, now_ms: i64) -> Result<Report, GapsError> {
    let filter = &request.filter;
    let rows = store.questions(filter, &[Confidence::Low, Confidence::None])?;
    let mut questions = group_questions(rows);
    questions.truncate(MAX_QUESTIONS);

    let analyzer = index.analyzer();
    let phrasings: Vec<&str> = index.entries().iter().flat_map(|e| e.phrasings()).collect();
    let mut vectorizer =
        Vectorizer::new(analyzer, questions.iter().map(|q| q.normalized.as_str()).chain(phrasings.iter().copied()));
    let vectors: Vec<Vector> = questions.iter().map(|q| vectorizer.vector(q.text())).collect();
    let counts: Vec<u64> = questions.iter().map(|q| q.count).collect();
    let clusters = cluster::cluster(&vectors, &counts, request.similarity);

    let mut gaps = Vec::with_capacity(clusters.len());
    for members in &clusters {
        let gap = describe(index, &mut vectorizer, &questions, &vectors, members, request.similarity);
        gaps.push(gap);
    }
    // Impact: open before resolved, then count, then the most recent.
    gaps.sort_by(|a, b| {
        (a.status == Status::Resolved)
            .cmp(&(b.status == Status::Resolved))
            .then(b.count.cmp(&a.count))
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.id.cmp(&b.id))
    });
    let totals = Totals {
        searches: 0,
        gaps: counts.iter().sum(),
        clusters: gaps.len(),
        open: gaps.iter().filter(|g| g.status == Status::Open).count(),
        resolved: gaps.iter().filter(|g| g.status == Status::Resolved).count(),
    };
    gaps.retain(|g| match request.status {
        StatusFilter::All => true,
        StatusFilter::Open => g.status == Status::Open,
        StatusFilter::Resolved => g.status == Status::Resolved,
    });
    gaps.truncate(request.limit);

    let day_rows = store.days(filter)?;
    let searches = day_rows.iter().map(|d| d.searches).sum();
    let days = fill_days(filter, &day_rows);
    Ok(Report {
        generated_at: format_time(now_ms),
        since: format_time(filter.since_ms),
        until: format_time(filter.until_ms),
        revision: index.revision.clone(),
        totals: Totals { searches, ..totals },
        gaps,
        asked_despite_answered: asked_despite_answered(store, index, filter)?,
        unsatisfying: unsatisfying(store, index, filter)?,
        days,
    })
}

fn group_questions(rows: Vec<QuestionRow>) -> Vec<Question> {
    let mut by_text: HashMap<String, Question> = HashMap::new();
    for row in rows {
        if row.normalized.is_empty() {
            continue;
        }
        let q = by_text.entry(row.normalized.clone()).or_insert_with(|| Question {
            normalized: row.normalized.clone(),
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            ..Question::default()
        });
        *q.texts.entry(row.query).or_default() += row.count;
        q.count += row.count;
        q.first_ms = q.first_ms.min(row.first_ms);
        q.last_ms = q.last_ms.max(row.last_ms);
        if let Some(p) = row.product {
            *q.products.entry(p).or_default() += row.count;
        }
        if let Some(p) = row.platform {
            *q.platforms.entry(p).or_default() += row.count;
        }
        q.sources.insert(row.source);
    }
    let mut questions: Vec<Question> = by_text.into_values().collect();
    // A fixed order makes clustering reproducible.
    questions.sort_by(|a, b| b.count.cmp(&a.count).then(a.normalized.cmp(&b.normalized)));
    questions
}

/// The re-run of one question against the current index.
struct Rerun {
    confidence: Confidence,
    top: Option<String>,
    /// The top hits with their scores.
    candidates: Vec<(String, f32)>,
}

fn rerun(index: &SearchIndex, q: &Question) -> Rerun {
    let product = most_common(&q.products);
    let platform = most_common(&q.platforms).and_then(|p| p.parse::<Platform>().ok());
    let request = SearchRequest { limit: 3, product, platform, ..SearchRequest::new(q.text()) };
    match index.search(&request) {
        Ok(results) => Rerun {
            confidence: results.confidence,
            top: results.hits.first().map(|h| h.id.clone()),
            candidates: results.hits.iter().map(|h| (h.id.clone(), h.score)).collect(),
        },
        Err(_) => Rerun { confidence: Confidence::None, top: None, candidates: Vec::new() },
    }
}

fn describe(
    index: &SearchIndex,
    vectorizer: &mut Vectorizer<'_>,
    questions: &[Question],
    vectors: &[Vector],
    members: &[usize],
    similarity: f32,
) -> Gap {
    let lead = &questions[members[0]];
    let representative = lead.text().to_string();
    let count = members.iter().map(|&m| questions[m].count).sum();
    let mut products: HashMap<String, u64> = HashMap::new();
    let mut platforms: HashMap<String, u64> = HashMap::new();
    let mut sources = BTreeSet::new();
    for &m in members {
        let q = &questions[m];
        for (p, n) in &q.products {
            *products.entry(p.clone()).or_default() += n;
        }
        for (p, n) in &q.platforms {
            *platforms.entry(p.clone()).or_default() += n;
        }
        sources.extend(q.sources.iter().cloned());
    }

    // Re-run the most-asked questions: resolved when most of the asking now
    // gets a confident answer.
    let reruns: Vec<(u64, Rerun)> =
        members.iter().take(RERUN_PER_CLUSTER).map(|&m| (questions[m].count, rerun(index, &questions[m]))).collect();
    let asked: u64 = reruns.iter().map(|r| r.0).sum();
    let mut answered_by: HashMap<&str, u64> = HashMap::new();
    for (n, r) in &reruns {
        if r.confidence == Confidence::High {
            if let Some(id) = &r.top {
                *answered_by.entry(id.as_str()).or_default() += n;
            }
        }
    }
    let answered: u64 = answered_by.values().sum();
    let resolved_by = if answered * 2 > asked {
        answered_by
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .and_then(|(id, _)| index.entry(id))
            .map(|e| EntryRef { id: e.id.clone(), question: e.question.clone() })
    } else {
        None
    };

    // Nearest: the entry the cluster's questions reach most, each re-run
    // voting with its hits' scores relative to its best (weighted by how
    // often the question was asked).
    let mut votes: Vec<(&str, f32)> = Vec::new();
    for (n, r) in &reruns {
        let best = r.candidates.first().map_or(1.0, |c| c.1.max(f32::EPSILON));
        for (id, score) in &r.candidates {
            let vote = *n as f32 * score / best;
            match votes.iter_mut().find(|v| v.0 == id) {
                Some(v) => v.1 += vote,
                None => votes.push((id, vote)),
            }
        }
    }
    let top = votes.iter().max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(a.0))).map(|v| v.0);
    let member_vectors: Vec<&Vector> = members.iter().map(|&m| &vectors[m]).collect();
    let member_counts: Vec<u64> = members.iter().map(|&m| questions[m].count).collect();
    let centroid = cluster::centroid(&member_vectors, &member_counts);
    let nearest = top.and_then(|id| index.entry(id)).map(|entry| {
        // How close the cluster is to the entry's closest phrasing, on the
        // clustering scale: as close as paraphrases are → add as 相似问.
        let similarity = entry.phrasings().map(|p| vectorizer.vector(p).cosine(&centroid)).fold(0.0f32, f32::max);
        let score = reruns[0].1.candidates.iter().find(|(id, _)| *id == entry.id).map_or(0.0, |(_, s)| *s);
        Nearest { id: entry.id.clone(), question: entry.question.clone(), score, similarity }
    });

    let (status, suggestion) = match (&resolved_by, &nearest) {
        (Some(_), _) => (Status::Resolved, Suggestion::None),
        (None, Some(n)) if n.similarity >= cluster::ADD_SIMILAR.max(similarity) => {
            (Status::Open, Suggestion::AddSimilar)
        }
        _ => (Status::Open, Suggestion::NewEntry),
    };
    let mut question_counts: Vec<QuestionCount> = members
        .iter()
        .map(|&m| QuestionCount { text: questions[m].text().to_string(), count: questions[m].count })
        .collect();
    question_counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.text.cmp(&b.text)));

    Gap {
        id: gap_id(&lead.normalized),
        representative,
        count,
        first_seen: format_time(members.iter().map(|&m| questions[m].first_ms).min().unwrap_or(0)),
        last_seen: format_time(members.iter().map(|&m| questions[m].last_ms).max().unwrap_or(0)),
        products: by_count(products),
        platforms: by_count(platforms),
        sources: sources.into_iter().collect(),
        questions: question_counts,
        nearest,
        suggestion,
        status,
        resolved_by,
    }
}

fn by_count(map: HashMap<String, u64>) -> Vec<String> {
    let mut items: Vec<(String, u64)> = map.into_iter().collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    items.into_iter().map(|(k, _)| k).collect()
}

/// `g-` and 8 hex digits of a hash of the representative's normalised text.
fn gap_id(normalized: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(normalized.as_bytes());
    format!("g-{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3])
}

fn fill_days(filter: &Filter, rows: &[crate::querylog::store::DayRow]) -> Vec<Day> {
    let first = (filter.since_ms + UTC8_MS).div_euclid(DAY_MS);
    let last = (filter.until_ms - 1 + UTC8_MS).div_euclid(DAY_MS);
    // A window of years would make a chart of thousands of bars: show the
    // days that have searches only.
    if last - first > 400 {
        return rows.iter().map(|r| Day { day: format_day(r.day), searches: r.searches, gaps: r.gaps }).collect();
    }
    (first..=last)
        .map(|day| {
            let row = rows.iter().find(|r| r.day == day);
            Day { day: format_day(day), searches: row.map_or(0, |r| r.searches), gaps: row.map_or(0, |r| r.gaps) }
        })
        .collect()
}

/// Per product: questions agents were asked that a public entry of that
/// product answers with high confidence.
fn asked_despite_answered(
    store: &Store,
    index: &SearchIndex,
    filter: &Filter,
) -> Result<Vec<ProductQuestions>, GapsError> {
    if filter.source.is_some_and(|s| s != Source::Agent) {
        return Ok(Vec::new());
    }
    let agent = Filter { source: Some(Source::Agent), ..filter.clone() };
    let rows = store.questions(&agent, &[Confidence::High])?;
    // product → entry → question text → count
    let mut tree: HashMap<String, HashMap<String, HashMap<String, u64>>> = HashMap::new();
    for row in rows {
        let Some(entry) = row.top_id.as_deref().and_then(|id| index.entry(id)) else {
            continue;
        };
        if entry.audience != Audience::Public {
            continue;
        }
        let products: Vec<String> = match &row.product {
            Some(p) if entry.products.is_empty() || entry.products.contains(p) => vec![p.clone()],
            Some(_) => continue,
            None => entry.products.clone(),
        };
        for product in products {
            *tree
                .entry(product)
                .or_default()
                .entry(entry.id.clone())
                .or_default()
                .entry(row.query.clone())
                .or_default() += row.count;
        }
    }
    let mut out: Vec<ProductQuestions> = tree
        .into_iter()
        .map(|(product, entries)| {
            let mut entries: Vec<AnsweredEntry> = entries
                .into_iter()
                .filter_map(|(id, texts)| {
                    let entry = index.entry(&id)?;
                    let mut questions: Vec<QuestionCount> =
                        texts.into_iter().map(|(text, count)| QuestionCount { text, count }).collect();
                    questions.sort_by(|a, b| b.count.cmp(&a.count).then(a.text.cmp(&b.text)));
                    Some(AnsweredEntry {
                        id,
                        question: entry.question.clone(),
                        count: questions.iter().map(|q| q.count).sum(),
                        questions,
                    })
                })
                .collect();
            entries.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
            ProductQuestions { product, count: entries.iter().map(|e| e.count).sum(), entries }
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.product.cmp(&b.product)));
    Ok(out)
}

/// Entries with at least [`MIN_FEEDBACK`] votes, most of them "not helpful".
fn unsatisfying(store: &Store, index: &SearchIndex, filter: &Filter) -> Result<Vec<EntryFeedback>, GapsError> {
    let mut out: Vec<EntryFeedback> = store
        .feedback(filter)?
        .into_iter()
        .filter(|f| f.helpful + f.unhelpful >= MIN_FEEDBACK && f.unhelpful * 2 >= f.helpful + f.unhelpful)
        .map(|f| EntryFeedback {
            question: index.entry(&f.entry_id).map_or_else(String::new, |e| e.question.clone()),
            id: f.entry_id,
            helpful: f.helpful,
            unhelpful: f.unhelpful,
        })
        .collect();
    out.sort_by(|a, b| b.unhelpful.cmp(&a.unhelpful).then(a.helpful.cmp(&b.helpful)).then(a.id.cmp(&b.id)));
    Ok(out)
}
