//! Semantic ranking fused with the lexical one.
//!
//! Lexical matching cannot see that 「情侣款吗」 asks for 「男女同款」: no
//! character is shared. The sentence encoder can. Each search encodes the
//! query once (cached for repeated questions; in the server, on the encoding
//! pool's threads while the lexical ranking runs, see [`super::encoding`]),
//! compares it with the vectors of every phrasing of the candidate entries,
//! and fuses the two rankings: each score is min-max normalised over the
//! candidates of this query, then
//! weighted (`Ranking::semantic`, the rest lexical). Normalising per query
//! is what makes the scores comparable: BM25 grows with query length, and
//! cosines of this encoder sit between about 0.2 and 1.
//!
//! Candidates are the lexical ones plus, on knowledge bases of up to
//! [`FULL_SCAN_ROWS`] phrasings, the semantically nearest entries found by
//! scanning every vector (about 0.7 ms at that size, with AVX2). Larger
//! knowledge bases rescore the lexical candidates only: a scan of 500k
//! vectors would cost tens of milliseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::collect::Filter;
use super::encoding::{EncodingPool, EncodingStats, Submitted};
use super::{Candidate, Ranked};
use crate::index::vectors::{QueryVector, Vectors};
use crate::index::SearchIndex;
use crate::semantic::Encoder;

/// Knowledge bases with at most this many phrasings are scanned whole for
/// semantic candidates.
pub const FULL_SCAN_ROWS: usize = 30_000;
/// Query vectors kept for repeated questions (two generations of this many).
const CACHE_SIZE: usize = 4_096;
/// Longest query text encoded, in characters: a pasted chat transcript
/// costs at most this much encoding (the question is nearly always near
/// the start or the end, and both are kept).
pub const MAX_QUERY_CHARS: usize = 160;

/// The semantic side of an opened generation.
pub(crate) struct SemanticIndex {
    encoder: Arc<Encoder>,
    vectors: Vectors,
    cache: QueryCache,
    /// Encodes queries beside the lexical ranking (see [`super::encoding`]).
    pool: EncodingPool,
}

/// The semantic scores of the top hit, for `explain` and confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SemanticEvidence {
    /// Cosine of the query with the top hit's closest phrasing.
    pub cosine: f32,
    /// That cosine minus the best cosine of any other candidate entry.
    pub cosine_margin: f32,
    /// The top hit's lexical score (0 if it was found semantically only).
    pub lexical_score: f32,
    /// The top hit's fused score (0–1).
    pub fused_score: f32,
}

impl SemanticIndex {
    pub fn new(encoder: Arc<Encoder>, vectors: Vectors) -> SemanticIndex {
        let pool = EncodingPool::new(encoder.clone());
        SemanticIndex { encoder, vectors, cache: QueryCache::default(), pool }
    }

    pub fn model(&self) -> &str {
        self.vectors.model()
    }

    /// The query's vector, from the cache when the question was asked before.
    pub fn query_vector(&self, query: &str) -> Arc<QueryVector> {
        let text = bounded(query);
        if let Some(hit) = self.cache.get(&text) {
            return hit;
        }
        let vector = self.encode(&text);
        self.cache.put(text, vector.clone());
        vector
    }

    /// Starts encoding the query on the pool's threads (unless it is cached);
    /// [`PendingVector::get`] collects the vector.
    pub fn submit(&self, query: &str) -> PendingVector<'_> {
        let text = bounded(query);
        match self.cache.get(&text) {
            Some(hit) => PendingVector::Ready(hit),
            None => PendingVector::Queued { submitted: self.pool.submit(text.clone()), text, index: self },
        }
    }

    pub fn encoding_stats(&self) -> EncodingStats {
        self.pool.stats()
    }

    fn encode(&self, text: &str) -> Arc<QueryVector> {
        Arc::new(QueryVector::new(&self.encoder.encode(text)))
    }
}

/// A query vector on its way: cached already, or being encoded by the pool.
pub(crate) enum PendingVector<'a> {
    Ready(Arc<QueryVector>),
    Queued { submitted: Submitted, text: String, index: &'a SemanticIndex },
}

impl PendingVector<'_> {
    /// Waits for the vector (without holding the thread) and caches it.
    pub async fn get(self) -> Arc<QueryVector> {
        match self {
            PendingVector::Ready(vector) => vector,
            PendingVector::Queued { submitted, text, index } => {
                let vector = submitted.vector(|| index.encode(&text)).await;
                index.cache.put(text, vector.clone());
                vector
            }
        }
    }
}

/// The start and end of a very long message, joined.
fn bounded(query: &str) -> String {
    let chars = query.chars().count();
    if chars <= MAX_QUERY_CHARS {
        return query.trim().to_string();
    }
    let head: String = query.chars().take(MAX_QUERY_CHARS / 2).collect();
    let tail: String = query.chars().skip(chars - MAX_QUERY_CHARS / 2).collect();
    format!("{head} {tail}")
}

/// Two generations: lookups check both, inserts go to the young one, and
/// when it is full it becomes the old one. Bounded, and a hot question
/// survives as long as it keeps being asked.
#[derive(Default)]
struct QueryCache(Mutex<(Generation, Generation)>);

/// Query text → its vector.
type Generation = HashMap<String, Arc<QueryVector>>;

impl QueryCache {
    fn get(&self, text: &str) -> Option<Arc<QueryVector>> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (young, old) = &mut *guard;
        if let Some(hit) = young.get(text) {
            return Some(hit.clone());
        }
        let hit = old.remove(text)?;
        young.insert(text.to_string(), hit.clone());
        Some(hit)
    }

    fn put(&self, text: String, vector: Arc<QueryVector>) {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (young, old) = &mut *guard;
        if young.len() >= CACHE_SIZE {
            *old = std::mem::take(young);
        }
        young.insert(text, vector);
    }
}

/// One candidate entry on both sides.
#[derive(Debug, Clone, Copy)]
struct Both {
    lexical: Candidate,
    lexical_score: f32,
    cosine: f32,
    semantic_phrasing: u32,
}

/// Replaces `ranked`'s lexical order with the fused one.
pub(super) fn fuse(
    index: &SearchIndex,
    semantic: &SemanticIndex,
    query: &QueryVector,
    ranked: &mut Ranked,
    filter: &Filter,
    weight: f32,
    candidates: usize,
) {
    let vectors = &semantic.vectors;
    let mut both: HashMap<u32, Both> = HashMap::with_capacity(ranked.entries.len() + candidates);
    for &(ord, lexical, score) in &ranked.entries {
        let (cosine, phrasing) = vectors.best_phrasing(query, ord as usize).unwrap_or((0.0, 0));
        both.insert(ord, Both { lexical, lexical_score: score, cosine, semantic_phrasing: phrasing });
    }
    if vectors.rows() <= FULL_SCAN_ROWS {
        let accept = |ord: usize| index.scopes.accepts(filter, ord);
        for (ord, cosine, phrasing) in vectors.nearest(query, candidates, accept) {
            both.entry(ord).or_insert(Both {
                lexical: Candidate::default(),
                lexical_score: 0.0,
                cosine,
                semantic_phrasing: phrasing,
            });
        }
    }
    if both.is_empty() {
        return;
    }
    let max_lexical = both.values().map(|b| b.lexical_score).fold(0.0, f32::max);
    let min_lexical = both.values().map(|b| b.lexical_score).fold(f32::INFINITY, f32::min);
    let max_cosine = both.values().map(|b| b.cosine).fold(f32::NEG_INFINITY, f32::max);
    let min_cosine = both.values().map(|b| b.cosine).fold(f32::INFINITY, f32::min);
    let norm = |value: f32, min: f32, max: f32| if max > min { (value - min) / (max - min) } else { 1.0 };
    let mut fused: Vec<(u32, Both, f32)> = both
        .into_iter()
        .map(|(ord, b)| {
            let lexical = if max_lexical > 0.0 { norm(b.lexical_score, min_lexical, max_lexical) } else { 0.0 };
            let score = weight * norm(b.cosine, min_cosine, max_cosine) + (1.0 - weight) * lexical;
            (ord, b, score)
        })
        .collect();
    fused.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));

    let top = fused[0].1;
    let best_other =
        |key: fn(&Both) -> f32| fused[1..].iter().map(|(_, b, _)| key(b)).fold(f32::NEG_INFINITY, f32::max);
    let other_cosine = best_other(|b| b.cosine);
    let other_lexical = best_other(|b| b.lexical_score);
    ranked.semantic = Some(SemanticEvidence {
        cosine: top.cosine,
        cosine_margin: if fused.len() > 1 { top.cosine - other_cosine } else { top.cosine },
        lexical_score: top.lexical_score,
        fused_score: fused[0].2,
    });
    // The lexical evidence keeps its meaning: how far the top hit is ahead
    // lexically (negative when fusion promoted a lexically weaker entry).
    ranked.margin = match (top.lexical_score, fused.len()) {
        (score, _) if score <= 0.0 => 0.0,
        (_, 1) => 1.0,
        (score, _) => (score - other_lexical.max(0.0)) / score,
    };
    ranked.entries = fused
        .into_iter()
        .map(|(ord, b, score)| {
            let mut candidate = b.lexical;
            // The phrasing shown as matched: the lexical one when the entry
            // was found lexically, else the closest in meaning.
            if b.lexical_score <= 0.0 {
                candidate.phrasing = b.semantic_phrasing as usize;
            }
            (ord, candidate, score)
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_keep_their_start_and_end() {
        let long = format!("{}能发顺丰吗", "亲".repeat(400));
        let text = bounded(&long);
        assert_eq!(text.chars().count(), MAX_QUERY_CHARS + 1);
        assert!(text.ends_with("能发顺丰吗"));
        assert_eq!(bounded(" 在吗 "), "在吗");
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_hot_questions() {
        let cache = QueryCache::default();
        let vector = Arc::new(QueryVector::new(&[1.0, 0.0]));
        cache.put("hot".into(), vector.clone());
        for i in 0..CACHE_SIZE * 3 {
            cache.put(format!("q{i}"), vector.clone());
            if i % 100 == 0 {
                assert!(cache.get("hot").is_some(), "asked often, kept");
            }
        }
        let guard = cache.0.lock().unwrap();
        assert!(guard.0.len() + guard.1.len() <= 2 * CACHE_SIZE);
    }
}
