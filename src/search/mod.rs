//! Search: a buyer's question → ranked entries, one hit per entry, with a
//! confidence.
//!
//! Two tantivy queries run over the same analysis of the question:
//! 1. **phrasings**: words, character bigrams and single characters against
//!    every 标准问 and 相似问 (each its own document); an entry scores by its
//!    best phrasing, so a long list of 相似问 neither helps nor hurts;
//! 2. **bodies**: words against title, tags and answer text, with lower weight.
//!
//! An entry's score is its best phrasing's score plus the weighted body
//! score. Filters (product, platform, audience, validity window) are exact
//! and never score; they are applied while collecting (see [`collect`]), so
//! both queries stay plain unions of terms that tantivy can prune.

pub(crate) mod collect;
mod confidence;
mod encoding;
pub(crate) mod semantic;
pub(crate) mod snippet;
pub mod understand;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tantivy::schema::Field;
use tantivy::Term;

use crate::analysis::{Analysis, Stream};
use crate::index::vectors::QueryVector;
use crate::index::SearchIndex;
use crate::model::{Confidence, Entry, Hit, Platform};
use collect::{Filter, WeightedTerm};
pub use confidence::Evidence;
pub use encoding::EncodingStats;
pub use semantic::SemanticEvidence;
use understand::Part;
pub use understand::Understanding;

/// Longest query accepted, in characters. Longer text is not a question.
pub const MAX_QUERY_CHARS: usize = 2000;
/// Most hits one search returns.
pub const MAX_LIMIT: usize = 100;

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is empty or only white space.
    #[error("the query is empty")]
    EmptyQuery,
    /// The query is longer than [`MAX_QUERY_CHARS`].
    #[error("the query has {0} characters; the limit is {MAX_QUERY_CHARS}")]
    QueryTooLong(usize),
    /// `limit` is 0 or above [`MAX_LIMIT`].
    #[error("limit must be between 1 and {MAX_LIMIT}")]
    BadLimit,
    /// tantivy failed; an internal error, not the caller's.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// Weights of the ranking signals. Defaults were chosen on the public dev
/// sets in `../shared/eval` (see README, "Ranking").
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub words: f32,
    pub bigrams: f32,
    pub chars: f32,
    pub title: f32,
    pub answer: f32,
    /// Entries kept from each of the two queries before they are merged.
    pub candidates: usize,
    /// Postings the candidate-producing terms may have together.
    ///
    /// Only a query's strongest terms (rarest, after weighting) whose
    /// postings fit in this budget find candidate phrasings; the commoner
    /// terms (characters such as 的, 我, 买 in a chatty message) still score
    /// every candidate but cannot make a phrasing a candidate on their own.
    /// A phrasing sharing nothing informative with the question is not an
    /// answer, and on a 100k-entry knowledge base those common characters
    /// have tens of thousands of postings each. `usize::MAX` makes every
    /// search exhaustive (exact).
    pub candidate_postings: usize,
    /// Indexes with at most this many documents (phrasings and bodies) are
    /// searched exhaustively whatever the budget: about 6,000 entries,
    /// which includes the sample knowledge base and the public dev sets.
    pub exhaustive_below: usize,
    /// Weight of the semantic score in the fused ranking (the lexical one
    /// gets the rest); 0 ranks lexically even when vectors are there.
    pub semantic: f32,
}

impl Default for Ranking {
    fn default() -> Self {
        // Single characters dominate: buyers' wording rarely matches jieba's
        // segmentation of the written question, while characters do (atec-s500
        // dev MRR@10: words only 0.50, these weights 0.59).
        Ranking {
            words: 0.5,
            bigrams: 0.5,
            chars: 2.0,
            title: 0.3,
            answer: 0.1,
            candidates: 40,
            candidate_postings: 10_000,
            exhaustive_below: 30_000,
            semantic: DEFAULT_SEMANTIC_WEIGHT,
        }
    }
}

/// What to search for and among which entries.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    pub query: &'a str,
    pub limit: usize,
    /// Only this product's entries and shop-wide ones.
    pub product: Option<&'a str>,
    /// Only entries for this platform and platform-neutral ones.
    pub platform: Option<Platform>,
    /// Only `audience: public` entries (buyers, the widget).
    pub public_only: bool,
    /// The time that decides which time-limited entries are served; `None`
    /// is now. Set explicitly to preview a knowledge base at a future time.
    pub at: Option<jiff::Timestamp>,
}

impl<'a> SearchRequest<'a> {
    pub fn new(query: &'a str) -> Self {
        SearchRequest { query, limit: 10, product: None, platform: None, public_only: false, at: None }
    }
}

/// The answer to a search.
#[derive(Debug, Clone)]
pub struct SearchResults {
    pub confidence: Confidence,
    pub hits: Vec<Hit>,
    /// What the confidence was decided on (for calibration and explain).
    pub evidence: Option<Evidence>,
    pub took: Duration,
}

/// How much more of the query (coverage, 0–1) a typo correction must match
/// to be kept: a correction that only reshuffles near-ties is not one.
const TYPO_GAIN: f32 = 0.05;

/// The typo trial search's share of the candidate budget (see above where
/// it is used); small indexes are searched exhaustively either way.
const TYPO_BUDGET_SHARE: usize = 4;

/// The semantic share of the fused score, calibrated on the public dev sets
/// (README, "Semantic ranking").
pub const DEFAULT_SEMANTIC_WEIGHT: f32 = 0.5;

/// Ranked entries of one query, before hits are made.
struct Ranked {
    entries: Vec<(u32, Candidate, f32)>,
    margin: f32,
    /// The top hit's semantic scores, when ranking was fused.
    semantic: Option<SemanticEvidence>,
    /// The parts' terms as one analysis (confidence, snippets).
    analysis: Analysis,
    /// The top hit's evidence, measured once…
    top: Option<Evidence>,
    /// …for this entry and phrasing (fusion may put another on top).
    measured: Option<(u32, usize)>,
}

impl Ranked {
    fn measure(&mut self, index: &SearchIndex, searcher: &tantivy::Searcher) {
        self.measured = self.entries.first().map(|(ord, c, _)| (*ord, c.phrasing));
        self.top = self.entries.first().and_then(|(ord, c, _)| {
            let entry = index.entry_at(*ord as usize)?;
            let matched = entry.phrasings().nth(c.phrasing).unwrap_or(&entry.question);
            let mut evidence = confidence::evidence(index, searcher, &self.analysis, matched, self.margin);
            evidence.semantic = self.semantic;
            Some(evidence)
        });
    }

    fn confidence(&self) -> Confidence {
        self.top.as_ref().map_or(Confidence::None, Evidence::confidence)
    }

    /// Share of the query the top hit covers; 0 without hits.
    fn coverage(&self) -> f32 {
        self.top.as_ref().map_or(0.0, |e| e.query_coverage)
    }
}

/// A query's lexical ranking, waiting for fusion and hits.
struct Lexical {
    started: Instant,
    searcher: tantivy::Searcher,
    ranked: Ranked,
    understanding: Understanding,
}

/// The request's query, trimmed, once it is known to be searchable.
fn checked<'a>(request: &SearchRequest<'a>) -> Result<&'a str, SearchError> {
    let query = request.query.trim();
    if query.is_empty() {
        return Err(SearchError::EmptyQuery);
    }
    let length = query.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(SearchError::QueryTooLong(length));
    }
    if request.limit == 0 || request.limit > MAX_LIMIT {
        return Err(SearchError::BadLimit);
    }
    Ok(query)
}

impl SearchResults {
    /// No hits: the query had nothing to search for.
    fn empty(started: Instant) -> SearchResults {
        SearchResults { confidence: Confidence::None, hits: Vec::new(), evidence: None, took: started.elapsed() }
    }
}

/// Per-entry accumulation while merging the two queries.
#[derive(Debug, Clone, Copy, Default)]
struct Candidate {
    phrasing_score: f32,
    phrasing: usize,
    body_score: f32,
}

impl SearchIndex {
    /// Runs a search with the default ranking.
    pub fn search(&self, request: &SearchRequest<'_>) -> Result<SearchResults, SearchError> {
        self.search_with(request, &Ranking::default())
    }

    /// Runs a search with explicit ranking weights, encoding the query (for
    /// fused ranking) on this thread after the lexical ranking.
    pub fn search_with(&self, request: &SearchRequest<'_>, ranking: &Ranking) -> Result<SearchResults, SearchError> {
        let (started, query) = (Instant::now(), checked(request)?);
        let Some(lexical) = self.lexical(query, request, ranking, started)? else {
            return Ok(SearchResults::empty(started));
        };
        let vector = self.fusing(ranking).map(|semantic| semantic.query_vector(&self.encoder_text(query)));
        Ok(self.finish(lexical, request, ranking, vector))
    }

    /// [`SearchIndex::search_with`] for the server: the query is encoded on
    /// the encoding pool's threads while this one ranks lexically, and the
    /// wait for its vector yields the thread (see [`encoding`]). The results
    /// are the same.
    pub async fn search_concurrently(
        &self,
        request: &SearchRequest<'_>,
        ranking: &Ranking,
    ) -> Result<SearchResults, SearchError> {
        let (started, query) = (Instant::now(), checked(request)?);
        let pending = self.fusing(ranking).map(|semantic| semantic.submit(&self.encoder_text(query)));
        let Some(lexical) = self.lexical(query, request, ranking, started)? else {
            return Ok(SearchResults::empty(started));
        };
        let vector = match pending {
            Some(pending) => Some(pending.get().await),
            None => None,
        };
        Ok(self.finish(lexical, request, ranking, vector))
    }

    /// What the server's query-encoding pool has done for this generation
    /// (`None` when ranking is lexical).
    pub fn encoding_stats(&self) -> Option<EncodingStats> {
        self.semantic.as_ref().map(|s| s.encoding_stats())
    }

    /// The semantic side, when this search fuses.
    fn fusing(&self, ranking: &Ranking) -> Option<&semantic::SemanticIndex> {
        self.semantic.as_ref().filter(|_| ranking.semantic > 0.0)
    }

    /// The text the encoder reads: normalised (simplified characters, folded
    /// widths), the way the knowledge base's phrasings read.
    fn encoder_text(&self, query: &str) -> String {
        self.analyzer.normalize(query).text
    }

    /// The lexical ranking (with the typo trial); `None` when the query has
    /// no searchable term.
    fn lexical(
        &self,
        query: &str,
        request: &SearchRequest<'_>,
        ranking: &Ranking,
        started: Instant,
    ) -> Result<Option<Lexical>, SearchError> {
        let knows = |word: &str| self.knows_word(word);
        let cx = understand::Context { analyzer: &self.analyzer, lexicon: self.lexicon.as_ref(), knows: &knows };
        let (mut understanding, parts) = understand::understand(&cx, query);
        if parts.iter().all(|p| p.analysis.is_empty()) {
            return Ok(None);
        }
        let searcher = self.reader.searcher();
        let mut ranked = self.rank(&searcher, request, ranking, &parts, ranking.candidate_postings)?;
        // Typos: only when the search is weak, and only if the corrected
        // query matches the knowledge base better than the one typed. The
        // second search gets a quarter of the candidate budget: it is a
        // trial that usually fails (a window that sounds like a known word
        // is more often a word boundary than a typo), and a correction that
        // helps brings in a word of the knowledge base, which the rarest
        // terms' budget finds. On the 100k synthetic index this trial was a
        // fifth of all search time; the top answer agrees with an exhaustive
        // search as often as before (`examples/agreement`).
        if self.analyzer.options().typos && ranked.confidence() != Confidence::High {
            if let Some((corrections, fixed)) = understand::correct(&cx, &understanding) {
                let fixed_parts = understand::corrected_parts(&cx, &understanding, &fixed);
                let budget = match ranking.candidate_postings {
                    usize::MAX => usize::MAX,
                    all => all / TYPO_BUDGET_SHARE,
                };
                let second = self.rank(&searcher, request, ranking, &fixed_parts, budget)?;
                if second.coverage() > ranked.coverage() + TYPO_GAIN {
                    ranked = second;
                    understanding.corrections = corrections;
                    understand::describe(&self.analyzer, &mut understanding, &fixed_parts);
                }
            }
        }
        Ok(Some(Lexical { started, searcher, ranked, understanding }))
    }

    /// Fuses in the query's vector (when there is one) and makes the hits.
    fn finish(
        &self,
        lexical: Lexical,
        request: &SearchRequest<'_>,
        ranking: &Ranking,
        vector: Option<Arc<QueryVector>>,
    ) -> SearchResults {
        let Lexical { started, searcher, mut ranked, understanding } = lexical;
        if let (Some(semantic), Some(vector)) = (self.fusing(ranking), vector) {
            let filter = self.filter(request);
            let candidates = ranking.candidates.max(request.limit * 4);
            let weight = ranking.semantic.min(1.0);
            semantic::fuse(self, semantic, &vector, &mut ranked, &filter, weight, candidates);
        }
        ranked.entries.truncate(request.limit.max(2));

        let Ranked { entries, margin, analysis, semantic, top, measured } = ranked;
        let mut hits = Vec::with_capacity(request.limit);
        let mut evidence = None;
        for (rank, (ord, candidate, score)) in entries.into_iter().take(request.limit).enumerate() {
            let Some(entry) = self.entry_at(ord as usize) else {
                continue;
            };
            let matched = entry.phrasings().nth(candidate.phrasing).unwrap_or(&entry.question);
            if rank == 0 {
                // Measured already unless fusion changed the top hit.
                let mut e = match top.clone() {
                    Some(e) if measured == Some((ord, candidate.phrasing)) => Evidence { margin, ..e },
                    _ => confidence::evidence(self, &searcher, &analysis, matched, margin),
                };
                e.phrasing_score = candidate.phrasing_score;
                e.body_score = candidate.body_score;
                e.semantic = semantic;
                evidence = Some(e);
            }
            hits.push(self.hit(ord as usize, entry, matched, score, &analysis));
        }
        let confidence = evidence.as_ref().map_or(Confidence::None, Evidence::confidence);
        if let Some(e) = evidence.as_mut() {
            e.understanding = Some(understanding);
        }
        SearchResults { confidence, hits, evidence, took: started.elapsed() }
    }

    /// Ranks entries for the weighted parts of a query.
    fn rank(
        &self,
        searcher: &tantivy::Searcher,
        request: &SearchRequest<'_>,
        ranking: &Ranking,
        parts: &[Part],
        candidate_postings: usize,
    ) -> Result<Ranked, SearchError> {
        let filter = self.filter(request);
        // Each query keeps its best entries; the merge needs a margin beyond
        // `limit` for entries that one query ranks low and the other high.
        let candidates = ranking.candidates.max(request.limit * 4);
        // Small indexes are searched exhaustively: exact, and cheap anyway.
        let budget = if self.docs.documents() <= ranking.exhaustive_below { usize::MAX } else { candidate_postings };
        let top = |terms: &[WeightedTerm], forward| {
            let top = collect::TopK {
                searcher,
                docs: &self.docs,
                scopes: &self.scopes,
                bounds: &self.bounds,
                forward,
                filter,
                k: candidates,
                budget,
            };
            top.run(terms)
        };
        let f = &self.fields;
        let analysis = understand::merged(parts);

        let mut merged: HashMap<u32, Candidate> = HashMap::new();
        let phrasing_terms = weighted_terms(
            &[
                (f.q_words, Stream::Words, ranking.words),
                (f.q_bigrams, Stream::Bigrams, ranking.bigrams),
                (f.q_chars, Stream::Chars, ranking.chars),
            ],
            parts,
        );
        for (score, doc) in top(&phrasing_terms, Some(&self.forward))? {
            let c = merged.entry(doc.ord).or_default();
            if score > c.phrasing_score {
                c.phrasing_score = score;
                c.phrasing = doc.phrasing as usize;
            }
        }
        let body_terms = weighted_terms(
            &[(f.t_words, Stream::Words, ranking.title), (f.a_words, Stream::Words, ranking.answer)],
            parts,
        );
        for (score, doc) in top(&body_terms, None)? {
            merged.entry(doc.ord).or_default().body_score = score;
        }

        let mut entries: Vec<(u32, Candidate, f32)> =
            merged.into_iter().map(|(ord, c)| (ord, c, c.phrasing_score + c.body_score)).collect();
        entries.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
        let margin = match entries.as_slice() {
            [first, second, ..] if first.2 > 0.0 => (first.2 - second.2) / first.2,
            _ => 1.0,
        };
        // Fusion needs every candidate; otherwise only the hits (and a
        // runner-up for the margin) are kept.
        let keep = if self.semantic.is_some() && ranking.semantic > 0.0 { candidates } else { request.limit.max(2) };
        entries.truncate(keep);
        let mut ranked = Ranked { entries, margin, analysis, semantic: None, top: None, measured: None };
        ranked.measure(self, searcher);
        Ok(ranked)
    }

    /// The request's filters; the clock is read only when the index has
    /// time-limited entries.
    fn filter(&self, request: &SearchRequest<'_>) -> Filter {
        let at = (self.manifest.timed > 0).then(|| request.at.unwrap_or_else(jiff::Timestamp::now).as_millisecond());
        self.scopes.filter(request.product, request.platform, request.public_only, at)
    }

    fn hit(&self, ord: usize, entry: &Entry, matched: &str, score: f32, analysis: &Analysis) -> Hit {
        let (snippet, highlights) =
            snippet::snippet(&self.analyzer, &self.plainness, ord, &entry.answer_text, analysis);
        Hit {
            id: entry.id.clone(),
            question: entry.question.clone(),
            matched: matched.to_string(),
            title: entry.title.clone(),
            kind: entry.kind,
            products: entry.products.clone(),
            platforms: entry.platforms.clone(),
            audience: entry.audience,
            score,
            snippet,
            highlights,
            answer_markdown: entry.answer_markdown.clone(),
            answer_html: entry.answer_html.clone(),
            source: entry.source.clone(),
        }
    }
}

/// The analysed terms of the parts in the given fields with their weights:
/// a query repeating a term counts it as often, and each part's terms count
/// with the part's weight.
fn weighted_terms(fields: &[(Field, Stream, f32)], parts: &[Part]) -> Vec<WeightedTerm> {
    let mut terms: Vec<WeightedTerm> = Vec::new();
    for &(field, stream, weight) in fields {
        if weight <= 0.0 {
            continue;
        }
        let first = terms.len();
        for part in parts {
            for (term, count) in term_counts(&part.analysis, stream) {
                let boost = weight * part.weight * count as f32;
                match terms[first..].iter_mut().find(|t| t.text == term) {
                    Some(t) => t.boost += boost,
                    None => terms.push(WeightedTerm {
                        term: Term::from_field_text(field, term),
                        stream,
                        text: term.to_string(),
                        boost,
                    }),
                }
            }
        }
    }
    terms
}

/// Distinct terms of one stream with how often the query repeats them.
fn term_counts(analysis: &Analysis, stream: Stream) -> Vec<(&str, usize)> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for token in analysis.stream(stream) {
        match counts.iter_mut().find(|(t, _)| *t == token.term) {
            Some((_, n)) => *n += 1,
            None => counts.push((&token.term, 1)),
        }
    }
    counts
}
