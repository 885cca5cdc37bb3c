//! Confidence: does the top hit answer the question?
//!
//! BM25 scores are not comparable between queries (they grow with query
//! length), so confidence is decided on normalised measurements instead:
//! - **query coverage**: the share of the query's characters and bigrams,
//!   weighted by rarity (IDF), that the best-matching phrasing contains;
//! - **match coverage**: the share of that phrasing the query contains;
//! - **margin**: how far the top hit's score is ahead of the second's.
//!
//! The thresholds were chosen with `scripts/calibrate.py` on the labelled
//! buyer queries in `tests/queries/` and checked on the public dev sets
//! (README, "Confidence"): `high` must be right at least 95% of the time,
//! and an answerable question must almost never be called `none`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tantivy::schema::Field;
use tantivy::{Searcher, Term};

use crate::analysis::{Analysis, Stream};
use crate::index::SearchIndex;
use crate::model::Confidence;

/// `high` needs at least this much of the matched phrasing in the query…
pub const HIGH_MATCH_COVERAGE: f32 = 0.30;
/// …at least this much of the query in the phrasing…
pub const HIGH_QUERY_COVERAGE: f32 = 0.35;
/// …and the top hit this far ahead of the next (relative score gap).
pub const HIGH_MARGIN: f32 = 0.10;
/// Below this match coverage the top hit shares nothing meaningful with
/// the question: `none`.
pub const NONE_MATCH_COVERAGE: f32 = 0.20;

/// The measurements a confidence is decided on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// IDF-weighted share of the query found in the matched phrasing.
    pub query_coverage: f32,
    /// IDF-weighted share of the matched phrasing found in the query.
    pub match_coverage: f32,
    /// `(top score − second score) / top score`; 1 when there is one hit.
    pub margin: f32,
    /// The query's terms the matched phrasing has, rarest first: why the
    /// top hit scored.
    #[serde(default)]
    pub matched_terms: Vec<String>,
    /// The top hit's score from its best phrasing…
    #[serde(default)]
    pub phrasing_score: f32,
    /// …and from its title, tags and answer.
    #[serde(default)]
    pub body_score: f32,
    /// How the query was understood: clauses, attributes, pinyin,
    /// corrections, synonyms and the weighted terms searched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub understanding: Option<crate::search::Understanding>,
    /// The top hit's semantic and fused scores, when ranking was fused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<crate::search::SemanticEvidence>,
}

/// With semantic ranking, `high` also when the top hit's closest phrasing
/// means nearly the same as the query (cosine)…
pub const SEMANTIC_HIGH_COSINE: f32 = 0.70;
/// …and no other candidate comes close in meaning.
pub const SEMANTIC_HIGH_MARGIN: f32 = 0.05;
/// Lexically unrelated and below this cosine: `none` (at or above, the
/// meaning may still be there: `low`, for an agent to judge).
pub const SEMANTIC_NONE_COSINE: f32 = 0.60;

impl Evidence {
    /// Lexical evidence decides alone without semantic scores. With them,
    /// either side can make a hit `high`, and `none` needs both to agree:
    /// thresholds chosen on the labelled buyer queries (README, "Semantic
    /// ranking") so that `high` stays at least as precise as lexical-only
    /// while covering more right answers, and fewer answerable questions
    /// are called `none`.
    pub fn confidence(&self) -> Confidence {
        let lexical = self.lexical_confidence();
        let Some(semantic) = self.semantic else { return lexical };
        if lexical == Confidence::High
            || (semantic.cosine >= SEMANTIC_HIGH_COSINE && semantic.cosine_margin >= SEMANTIC_HIGH_MARGIN)
        {
            Confidence::High
        } else if lexical == Confidence::None && semantic.cosine < SEMANTIC_NONE_COSINE {
            Confidence::None
        } else {
            Confidence::Low
        }
    }

    fn lexical_confidence(&self) -> Confidence {
        if self.match_coverage < NONE_MATCH_COVERAGE {
            Confidence::None
        } else if self.match_coverage >= HIGH_MATCH_COVERAGE
            && self.query_coverage >= HIGH_QUERY_COVERAGE
            && self.margin >= HIGH_MARGIN
        {
            Confidence::High
        } else {
            Confidence::Low
        }
    }
}

/// Measures how well `matched` (a phrasing of the top hit) covers the query.
pub fn evidence(index: &SearchIndex, searcher: &Searcher, query: &Analysis, matched: &str, margin: f32) -> Evidence {
    let phrasing = index.analyzer.analyze(matched);
    let f = &index.fields;
    let total_docs = searcher.num_docs().max(1) as f32;
    let idf = |field: Field, term: &str| {
        let df = searcher.doc_freq(&Term::from_field_text(field, term)).unwrap_or(0) as f32;
        (1.0 + (total_docs - df + 0.5) / (df + 0.5)).ln()
    };
    // Ordered sets: their weights are summed in the same order on every
    // run, so a coverage on a threshold cannot fall either side of it by
    // the luck of a hash seed.
    let units = |a: &Analysis| -> BTreeSet<(Field, String)> {
        let mut set = BTreeSet::new();
        for (field, stream) in [(f.q_chars, Stream::Chars), (f.q_bigrams, Stream::Bigrams)] {
            for t in a.stream(stream) {
                set.insert((field, t.term.clone()));
            }
        }
        set
    };
    let q = units(query);
    let m = units(&phrasing);
    let weight = |set: &BTreeSet<(Field, String)>| set.iter().map(|(field, t)| idf(*field, t)).sum::<f32>();
    let shared: BTreeSet<(Field, String)> = q.intersection(&m).cloned().collect();
    let shared_w = weight(&shared);
    // Clamped: float sums of the same weights can differ in the last bit.
    let ratio = |w: f32| if w > 0.0 { (shared_w / w).min(1.0) } else { 0.0 };
    let query_coverage = ratio(weight(&q));
    let match_coverage = ratio(weight(&m));
    let mut matched: Vec<(f32, &str)> = shared.iter().map(|(field, t)| (idf(*field, t), t.as_str())).collect();
    matched.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let matched_terms = matched.iter().take(12).map(|(_, t)| t.to_string()).collect();
    Evidence {
        query_coverage,
        match_coverage,
        margin,
        matched_terms,
        phrasing_score: 0.0,
        body_score: 0.0,
        understanding: None,
        semantic: None,
    }
}
