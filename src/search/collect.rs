//! Top-k retrieval: a weighted OR of terms, evaluated with MaxScore over a
//! candidate budget and scored from a forward index, with kefu's filters
//! applied while documents are visited.
//!
//! Why not tantivy's collectors alone: Chinese questions are full of
//! characters such as 吗, 的, 么, 怎 that occur in most phrasings, and a
//! buyer's chatty message brings thirty of them. tantivy scores a union of
//! terms either exhaustively (every posting of every term: on a 100k-entry
//! knowledge base that was 5 ms of a 6 ms search) or with block-max WAND,
//! which re-sorts all its cursors at every step and was slower still with
//! 40–80 terms. Filters written as `Must` clauses make it an intersection,
//! always exhaustive.
//!
//! So, on large indexes (see `Ranking::exhaustive_below`):
//! - **candidates** come only from the query's rarest terms whose postings
//!   fit a budget (`Ranking::candidate_postings`): a phrasing sharing none
//!   of the question's informative terms is not proposed. This is the one
//!   approximation; `examples/agreement` measures it against exhaustive
//!   search (98% same top answer on the 100k synthetic set);
//! - **MaxScore** (Turtle & Flood, 1995) then prunes further, exactly:
//!   terms are ordered commonest first with exact per-term bounds
//!   ([`Bounds`]), and once the k-th best score exceeds what the commonest
//!   terms could add together, they stop proposing candidates too;
//! - **each candidate is scored exactly**, on all the query's terms, from
//!   the phrasing's own terms in the forward index, in batches so that the
//!   cache misses of far-apart candidates overlap (the body query, whose
//!   long answers have no forward index, seeks the postings instead).
//!
//! Small indexes are scored exhaustively with tantivy's union, which is
//! exact and fast enough there.
//!
//! Filters are checked before a candidate is scored, against per-entry
//! [`Scope`]s packed in memory, so a filtered search prunes just as well and
//! the threshold is the k-th best *passing* score. [`DocTable`], read once
//! per index generation, maps tantivy's document to kefu's entry, phrasing,
//! forward row and fieldnorms rather than opening fast-field columns on
//! every search.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tantivy::fieldnorm::FieldNormReader;
use tantivy::index::SegmentId;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::{Bm25Weight, BooleanQuery, BoostQuery, EnableScoring, Occur, Query, TermQuery};
use tantivy::schema::Field;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, TantivyError, Term, TERMINATED};

use crate::analysis::Stream;
use crate::index::forward::{stream_tag, Forward};
use crate::model::{Audience, Entry, Platform};

/// Which entry and phrasing a tantivy document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DocRef {
    /// Ordinal of the entry in the generation's entry list.
    pub ord: u32,
    /// Phrasing number within the entry (0 = 标准问; body documents say 0).
    pub phrasing: u32,
}

/// Everything scoring a candidate needs of its document, in one place: the
/// MaxScore loop visits candidates far apart in the index, so each separate
/// table it reads costs a cache miss (about 100 ns) per candidate.
#[derive(Debug, Clone, Copy)]
struct DocInfo {
    ord: u32,
    /// The phrasing's terms in the forward index: from `start`, its words,
    /// bigrams and characters, `lens` of each (0 for body documents).
    start: u32,
    lens: [u16; 3],
    phrasing: u16,
    /// tantivy's fieldnorm ids of the words, bigrams and chars fields.
    norms: [u8; 3],
}

impl DocInfo {
    fn doc_ref(&self) -> DocRef {
        DocRef { ord: self.ord, phrasing: u32::from(self.phrasing) }
    }

    /// Terms in the phrasing's forward row.
    fn len(&self) -> u32 {
        self.lens.iter().map(|&n| u32::from(n)).sum()
    }
}

/// A row's stream lengths as [`DocInfo`] keeps them. A phrasing with more
/// than 65,535 terms in one stream (a paragraph pasted as a question) is
/// scored on the terms up to there: the streams after it are dropped, so
/// that every kept stream still starts where its length says.
fn truncated_lengths(lengths: [usize; 3]) -> [u16; 3] {
    let mut kept = [0u16; 3];
    for (slot, &n) in kept.iter_mut().zip(&lengths) {
        *slot = u16::try_from(n).unwrap_or(u16::MAX);
        if n > usize::from(u16::MAX) {
            break;
        }
    }
    kept
}

/// Doc id → [`DocInfo`] for every segment of one generation. A generation is
/// never written after it is built, so the table is read once at open time.
#[derive(Debug, Default)]
pub(crate) struct DocTable {
    segments: HashMap<SegmentId, Arc<[DocInfo]>>,
}

impl DocTable {
    /// Reads the entry ordinals and phrasing numbers (fast fields) and the
    /// phrasing fields' norms of every document; `norm_fields` are the words,
    /// bigrams and chars fields, in that order.
    pub fn load(searcher: &Searcher, forward: &Forward, norm_fields: [Field; 3]) -> tantivy::Result<DocTable> {
        let mut segments = HashMap::new();
        for reader in searcher.segment_readers() {
            let fast = reader.fast_fields();
            let ord = fast.u64("ord")?;
            let phrasing = fast.u64("phrasing")?;
            let mut norms = Vec::with_capacity(3);
            for field in norm_fields {
                norms.push(reader.get_fieldnorms_reader(field)?);
            }
            let table: Vec<DocInfo> = (0..reader.max_doc())
                .map(|doc| {
                    let ord = ord.first(doc).map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX));
                    let number = phrasing.first(doc);
                    let phrasing = number.map_or(0, |v| u16::try_from(v).unwrap_or(u16::MAX));
                    // Only phrasing documents have a `phrasing` value and a row.
                    let row = number.and_then(|p| forward.row(ord, u32::from(phrasing)).filter(|_| p < 65_536));
                    let (start, len) = row.unwrap_or((0, 0));
                    let lens = forward.stream_lengths(start, len).ok_or_else(|| {
                        TantivyError::InternalError(format!("forward row of entry {ord} is not grouped by stream"))
                    })?;
                    let lens = truncated_lengths(lens);
                    Ok(DocInfo {
                        ord,
                        start,
                        lens,
                        phrasing,
                        norms: [norms[0].fieldnorm_id(doc), norms[1].fieldnorm_id(doc), norms[2].fieldnorm_id(doc)],
                    })
                })
                .collect::<tantivy::Result<_>>()?;
            segments.insert(reader.segment_id(), Arc::from(table));
        }
        Ok(DocTable { segments })
    }

    /// Documents in all segments.
    pub fn documents(&self) -> usize {
        self.segments.values().map(|s| s.len()).sum()
    }

    fn segment(&self, reader: &SegmentReader) -> tantivy::Result<Arc<[DocInfo]>> {
        self.segments.get(&reader.segment_id()).cloned().ok_or_else(|| {
            TantivyError::InternalError(format!("segment {} is not in the document table", reader.segment_id()))
        })
    }
}

/// What the filters need of one entry, packed for the collector's callback.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// Product numbers (see [`Scopes::product`]); empty = every product.
    products: Box<[u32]>,
    /// Bit per [`Platform`]; 0 = every platform.
    platforms: u8,
    public: bool,
    from_ms: i64,
    to_ms: i64,
}

/// Every entry's [`Scope`], by ordinal, and the product numbering.
#[derive(Debug, Default)]
pub(crate) struct Scopes {
    scopes: Arc<[Scope]>,
    products: HashMap<String, u32>,
}

fn platform_bit(platform: Platform) -> u8 {
    1 << Platform::ALL.iter().position(|p| *p == platform).unwrap_or(0)
}

impl Scopes {
    pub fn new(entries: &[Entry]) -> Scopes {
        let mut products: HashMap<String, u32> = HashMap::new();
        let scopes = entries
            .iter()
            .map(|entry| {
                let ids = entry
                    .products
                    .iter()
                    .map(|p| {
                        let next = products.len() as u32;
                        *products.entry(p.clone()).or_insert(next)
                    })
                    .collect();
                Scope {
                    products: ids,
                    platforms: entry.platforms.iter().fold(0, |bits, p| bits | platform_bit(*p)),
                    public: entry.audience == Audience::Public,
                    from_ms: entry.valid_from.map_or(i64::MIN, |t| t.as_millisecond()),
                    to_ms: entry.valid_to.map_or(i64::MAX, |t| t.as_millisecond()),
                }
            })
            .collect::<Vec<Scope>>();
        Scopes { scopes: Arc::from(scopes), products }
    }

    /// Whether entry `ord` passes `filter`.
    pub fn accepts(&self, filter: &Filter, ord: usize) -> bool {
        self.scopes.get(ord).is_some_and(|scope| filter.accepts(scope))
    }

    /// The filter for one search. `at_ms` is `None` when no entry is
    /// time-limited, so that the common case skips the clock entirely.
    pub fn filter(
        &self,
        product: Option<&str>,
        platform: Option<Platform>,
        public_only: bool,
        at_ms: Option<i64>,
    ) -> Filter {
        Filter {
            product: match product {
                None => ProductFilter::Any,
                // A product no entry names: only shop-wide entries apply.
                Some(p) => self.products.get(p).map_or(ProductFilter::ShopWide, |&id| ProductFilter::Only(id)),
            },
            platform: platform.map(platform_bit),
            public_only,
            at_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProductFilter {
    Any,
    Only(u32),
    ShopWide,
}

/// One search's product, platform, audience and time restrictions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filter {
    product: ProductFilter,
    platform: Option<u8>,
    public_only: bool,
    at_ms: Option<i64>,
}

impl Filter {
    /// Whether the filter lets every entry through (nothing to check).
    fn is_open(&self) -> bool {
        self.product == ProductFilter::Any && self.platform.is_none() && !self.public_only && self.at_ms.is_none()
    }

    #[inline]
    pub fn accepts(&self, scope: &Scope) -> bool {
        let product = match self.product {
            ProductFilter::Any => true,
            ProductFilter::Only(id) => scope.products.is_empty() || scope.products.contains(&id),
            ProductFilter::ShopWide => scope.products.is_empty(),
        };
        product
            && self.platform.is_none_or(|bit| scope.platforms == 0 || scope.platforms & bit != 0)
            && (!self.public_only || scope.public)
            && self.at_ms.is_none_or(|now| scope.from_ms <= now && now < scope.to_ms)
    }
}

/// One weighted term of a query: BM25 of `term`, multiplied by `boost`.
#[derive(Debug, Clone)]
pub(crate) struct WeightedTerm {
    pub term: Term,
    /// The analysis stream the term came from (to find it in the forward index).
    pub stream: Stream,
    pub text: String,
    pub boost: Score,
}

/// Most terms whose statistics [`Bounds`] remembers; beyond it, those of new
/// terms are computed for each search and not kept (a flood of random
/// queries must not grow memory without limit).
const MAX_BOUNDS: usize = 1 << 20;

/// What a generation knows of one term (boost 1).
#[derive(Debug, Clone, Copy)]
struct TermStats {
    /// Its highest BM25 score over all documents.
    bound: Score,
    /// Its inverse document frequency, as tantivy computes it.
    idf: Score,
}

/// One field's BM25 length statistics: a weight whose length table (256
/// divisions to compute) every term of the field shares.
#[derive(Clone)]
struct FieldStats {
    base: Bm25Weight,
    base_idf: Score,
    documents: u64,
}

impl FieldStats {
    /// The BM25 weight of a term of this field with inverse document
    /// frequency `idf`, multiplied by `boost`: tantivy's weight, without
    /// recomputing the length table for every term of every search.
    fn weight(&self, idf: Score, boost: Score) -> Bm25Weight {
        self.base.boost_by(idf / self.base_idf * boost)
    }
}

/// tantivy's inverse document frequency (`query::bm25`).
fn idf(doc_freq: u64, documents: u64) -> Score {
    let x = (documents.saturating_sub(doc_freq) as Score + 0.5) / (doc_freq as Score + 0.5);
    (1.0 + x).ln()
}

/// Per-term statistics, computed the first time a search uses a term and
/// kept for the generation (which never changes once built), and each
/// field's length statistics.
///
/// MaxScore prunes only as well as its bounds are tight. tantivy's own
/// bound, idf·(k1 + 1), assumes an unbounded term frequency; a phrasing
/// holds a character once or twice, so the real maximum is 40–60% of that,
/// and with thirty common characters in a chatty message the loose bounds
/// kept nearly every term essential. The exact maximum costs one pass over
/// the term's postings, once; a knowledge base's vocabulary is small
/// (thousands of characters, tens of thousands of words and bigrams).
///
/// Keeping the document frequency here too spares every search a term
/// dictionary lookup per term and segment, which tantivy's `TermQuery`
/// would make.
#[derive(Default)]
pub(crate) struct Bounds {
    known: RwLock<HashMap<Term, TermStats>>,
    fields: RwLock<HashMap<Field, FieldStats>>,
}

impl std::fmt::Debug for Bounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let terms = self.known.read().map_or(0, |k| k.len());
        f.debug_struct("Bounds").field("terms", &terms).finish()
    }
}

impl Bounds {
    fn field(&self, searcher: &Searcher, field: Field) -> tantivy::Result<FieldStats> {
        if let Some(stats) = self.fields.read().unwrap_or_else(|e| e.into_inner()).get(&field) {
            return Ok(stats.clone());
        }
        let mut tokens = 0u64;
        let mut documents = 0u64;
        for reader in searcher.segment_readers() {
            tokens += reader.inverted_index(field)?.total_num_tokens();
            documents += u64::from(reader.max_doc());
        }
        let average = tokens as Score / documents.max(1) as Score;
        let stats = FieldStats {
            base: Bm25Weight::for_one_term_without_explain(0, documents, average),
            base_idf: idf(0, documents),
            documents,
        };
        self.fields.write().unwrap_or_else(|e| e.into_inner()).insert(field, stats.clone());
        Ok(stats)
    }

    fn get(&self, searcher: &Searcher, field: &FieldStats, term: &Term) -> tantivy::Result<TermStats> {
        if let Some(stats) = self.known.read().unwrap_or_else(|e| e.into_inner()).get(term) {
            return Ok(*stats);
        }
        let idf = idf(searcher.doc_freq(term)?, field.documents);
        let weight = field.weight(idf, 1.0);
        let mut bound: Score = 0.0;
        for reader in searcher.segment_readers() {
            if let Some(mut scorer) = TermPostings::open(reader, term, &weight)? {
                while scorer.doc() != TERMINATED {
                    bound = bound.max(scorer.score());
                    scorer.advance();
                }
            }
        }
        let stats = TermStats { bound, idf };
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if known.len() < MAX_BOUNDS {
            known.insert(term.clone(), stats);
        }
        Ok(stats)
    }
}

/// BM25 over one term's postings in one segment: what tantivy's
/// `TermScorer` does, which tantivy does not export, without the trait
/// objects its `Weight` hands out (the MaxScore loops call `doc`, `advance`
/// and `score` for every posting they visit).
struct TermPostings {
    postings: SegmentPostings,
    norms: FieldNormReader,
    bm25: Bm25Weight,
}

impl TermPostings {
    /// The scorer of `term` in one segment, `None` when the segment does not
    /// have the term.
    fn open(reader: &SegmentReader, term: &Term, bm25: &Bm25Weight) -> tantivy::Result<Option<TermPostings>> {
        let field = term.field();
        let Some(postings) = reader.inverted_index(field)?.read_postings(term, IndexRecordOption::WithFreqs)? else {
            return Ok(None);
        };
        Ok(Some(TermPostings { postings, norms: reader.get_fieldnorms_reader(field)?, bm25: bm25.clone() }))
    }

    #[inline]
    fn doc(&self) -> DocId {
        self.postings.doc()
    }

    #[inline]
    fn advance(&mut self) -> DocId {
        self.postings.advance()
    }

    #[inline]
    fn seek(&mut self, target: DocId) -> DocId {
        self.postings.seek(target)
    }

    /// Documents in the postings (deleted ones included).
    fn size_hint(&self) -> u32 {
        self.postings.size_hint()
    }

    #[inline]
    fn score(&self) -> Score {
        self.bm25.score(self.norms.fieldnorm_id(self.doc()), self.postings.term_freq())
    }
}

/// The best phrasing (or body) of each entry kept so far: at most `k`
/// entries, one document each, so the threshold is the k-th best *entry*.
struct TopEntries {
    k: usize,
    /// Best first.
    kept: Vec<(Score, DocRef)>,
}

impl TopEntries {
    fn new(k: usize) -> Self {
        TopEntries { k: k.max(1), kept: Vec::with_capacity(k.max(1) + 1) }
    }

    /// The score a document must reach to change the kept set. A document
    /// that only ties it may still enter, by the tie-break of [`offer`]
    /// (lower entry ordinal first), so callers offer every document whose
    /// score reaches the threshold and prune only what stays below it: the
    /// kept set then does not depend on the order in which documents are
    /// visited, which is the order of tantivy's document ids, and those
    /// differ from one build of the same knowledge base to the next (the
    /// writer's threads each fill a segment).
    ///
    /// [`offer`]: TopEntries::offer
    fn threshold(&self) -> Score {
        if self.kept.len() < self.k {
            Score::MIN
        } else {
            self.kept.last().map_or(Score::MIN, |worst| worst.0)
        }
    }

    fn offer(&mut self, score: Score, doc: DocRef) {
        // Better: higher score, then lower ordinal, then lower phrasing.
        let before = |a: &(Score, DocRef), b: &(Score, DocRef)| {
            b.0.total_cmp(&a.0).then(a.1.ord.cmp(&b.1.ord)).then(a.1.phrasing.cmp(&b.1.phrasing))
        };
        let candidate = (score, doc);
        if let Some(i) = self.kept.iter().position(|kept| kept.1.ord == doc.ord) {
            if before(&candidate, &self.kept[i]) != Ordering::Less {
                return;
            }
            self.kept.remove(i);
        } else if self.kept.len() >= self.k {
            match self.kept.last() {
                Some(worst) if before(&candidate, worst) == Ordering::Less => {
                    self.kept.pop();
                }
                _ => return,
            }
        }
        let at = self.kept.partition_point(|kept| before(kept, &candidate) == Ordering::Less);
        self.kept.insert(at, candidate);
    }
}

/// A term's postings in one segment and the most it can add to a score.
struct Cursor {
    scorer: TermPostings,
    bound: Score,
    /// `scorer.doc()`, kept here: the loop asks for it several times per
    /// candidate.
    doc: DocId,
}

impl Cursor {
    fn advance(&mut self) {
        self.doc = self.scorer.advance();
    }

    fn seek(&mut self, target: DocId) {
        self.doc = self.scorer.seek(target);
    }
}

/// Forward-index term id → index in a search's [`QueryTerm`]s.
type TermIds = Vec<(u32, usize)>;

/// What a search knows of one of its terms.
struct QueryTerm {
    term: Term,
    /// The most this term adds to any document's score.
    bound: Score,
    /// Its BM25 weight, boosted, for scoring from the forward index.
    bm25: Bm25Weight,
    /// Its stream's tag (see `index::forward`), which picks the fieldnorm.
    stream: usize,
}

/// Scores a candidate phrasing from its own terms (see `index::forward`).
///
/// This is the inner loop of a search on a large knowledge base (thousands
/// of candidate phrasings of twenty-odd terms each), so it is built to run
/// without branches the processor cannot predict and without divisions:
/// - the query's term ids are placed by a *perfect* hash (a multiplier
///   under which no two collide), so a lookup is one load and one compare,
///   whether the phrasing's term is in the query (a third of them) or not;
/// - BM25 at term frequency 1 (nearly every term of a short phrasing) is
///   `weight(term) × ratio(stream, fieldnorm)`: the length part of the
///   formula depends only on the field, so a phrasing's matches in one
///   stream are summed first and multiplied once. Other frequencies take
///   tantivy's formula.
///
/// Queries too long for a perfect hash in [`MAX_PERFECT_BITS`] fall back to
/// linear probing and tantivy's formula for every match.
struct ForwardScorer<'a> {
    forward: &'a Forward,
    /// Slot → (term id, the term's BM25 at frequency 1 and fieldnorm id 0).
    /// Empty slots hold [`EMPTY_SLOT`], which no term id equals.
    slots: Vec<(u32, Score)>,
    /// Slot → index into `terms`.
    owners: Vec<u32>,
    /// Whether `slots` is a perfect hash (else: linear probing).
    perfect: bool,
    multiplier: u32,
    shift: u32,
    /// Per stream tag and fieldnorm id: BM25 at frequency 1 relative to
    /// fieldnorm id 0 (the same for every term of the stream's field).
    ratios: [[Score; 256]; 3],
    terms: &'a [QueryTerm],
}

const EMPTY_SLOT: u32 = u32::MAX;

/// Largest perfect-hash table tried beyond the smallest one, in bits
/// (1 << 12 slots: 32 KiB, a first-level data cache). Random ids fit about
/// 150 to a table this size; the ids of one query are usually far easier,
/// because the forward index numbers terms in the order it meets them and
/// multiplicative hashing spreads nearby numbers evenly (a 600-term query
/// on the sample knowledge base fits).
const MAX_PERFECT_BITS: u32 = 12;

/// Multipliers tried per table size before a larger table is tried.
const PERFECT_TRIES: u32 = 64;

/// Slot of term `id` in a `1 << bits` table under `multiplier`.
#[inline]
fn slot_of(id: u32, multiplier: u32, bits: u32) -> usize {
    (id.wrapping_mul(multiplier) >> (32 - bits)) as usize
}

impl<'a> ForwardScorer<'a> {
    fn new(forward: &'a Forward, ids: &[(u32, usize)], terms: &'a [QueryTerm]) -> Self {
        let ratios = Self::ratios(terms);
        // Sparse enough that a multiplier without collisions is quickly
        // found: the chance of none is about exp(-n² / 2·slots).
        let smallest = (ids.len().max(1) * 8).next_power_of_two().trailing_zeros().max(4);
        let mut multiplier = 0x9E37_79B1u32;
        let mut taken: Vec<u64> = Vec::new();
        for bits in smallest..=MAX_PERFECT_BITS.max(smallest) {
            for _ in 0..PERFECT_TRIES {
                // Trial placements only mark bits; the table is built once.
                taken.clear();
                taken.resize((1usize << bits).div_ceil(64), 0);
                let collides = ids.iter().any(|&(id, _)| {
                    let slot = slot_of(id, multiplier, bits);
                    let (word, bit) = (slot / 64, 1u64 << (slot % 64));
                    let seen = taken[word] & bit != 0;
                    taken[word] |= bit;
                    seen
                });
                if !collides {
                    return Self::table(forward, ids, terms, ratios, bits, multiplier, true);
                }
                // Next odd multiplier (a fixed sequence: searches are repeatable).
                multiplier = multiplier.wrapping_mul(0x2C1B_3C6D).wrapping_add(0x297A_2D39) | 1;
            }
        }
        // Linear probing, at most a quarter full.
        let bits = (ids.len().max(1) * 4).next_power_of_two().trailing_zeros().max(4);
        Self::table(forward, ids, terms, ratios, bits, 0x9E37_79B1, false)
    }

    /// Per stream tag and fieldnorm id, BM25 at frequency 1 relative to
    /// fieldnorm id 0 (streams without a query term: 0).
    fn ratios(terms: &[QueryTerm]) -> [[Score; 256]; 3] {
        let mut ratios = [[0.0; 256]; 3];
        for (stream, ratios) in ratios.iter_mut().enumerate() {
            if let Some(term) = terms.iter().find(|t| t.stream == stream) {
                let at_zero = term.bm25.score(0, 1);
                for (norm, ratio) in ratios.iter_mut().enumerate() {
                    *ratio = term.bm25.score(norm as u8, 1) / at_zero;
                }
            }
        }
        ratios
    }

    /// The scorer with a `1 << bits` table under `multiplier`: a perfect
    /// hash of `ids` if `perfect` (no two collide), else linear probing.
    fn table(
        forward: &'a Forward,
        ids: &[(u32, usize)],
        terms: &'a [QueryTerm],
        ratios: [[Score; 256]; 3],
        bits: u32,
        multiplier: u32,
        perfect: bool,
    ) -> Self {
        let mut scorer = ForwardScorer {
            forward,
            slots: vec![(EMPTY_SLOT, 0.0); 1 << bits],
            owners: vec![0; 1 << bits],
            perfect,
            multiplier,
            shift: 32 - bits,
            ratios,
            terms,
        };
        for &(id, term) in ids {
            let mut slot = scorer.slot(id);
            while scorer.slots[slot].0 != EMPTY_SLOT {
                slot = (slot + 1) & (scorer.slots.len() - 1);
            }
            scorer.slots[slot] = (id, terms[term].bm25.score(0, 1));
            scorer.owners[slot] = term as u32;
        }
        scorer
    }

    #[inline]
    fn slot(&self, id: u32) -> usize {
        // The mask is a no-op (the shift leaves `bits` bits); it lets the
        // compiler drop the bounds check.
        (id.wrapping_mul(self.multiplier) >> self.shift) as usize & (self.slots.len() - 1)
    }

    #[inline]
    fn find(&self, id: u32) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut slot = self.slot(id);
        loop {
            let key = self.slots[slot].0;
            if key == id {
                return Some(slot);
            }
            if key == EMPTY_SLOT {
                return None;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Asks the processor to fetch the rows' cache lines, so that their
    /// misses overlap before [`ForwardScorer::score`] needs them.
    fn prefetch(&self, infos: &[&DocInfo]) {
        for info in infos {
            prefetch(self.forward.terms(info.start, info.len()));
        }
    }

    // Not inlined into the MaxScore loop, which would leave this loop short
    // of registers.
    #[inline(never)]
    fn score(&self, info: &DocInfo) -> Score {
        let row = self.forward.terms(info.start, info.len());
        let mut score = 0.0;
        let mut at = 0;
        for (stream, &len) in info.lens.iter().enumerate() {
            let len = usize::from(len);
            let terms = row.get(at..at + len).unwrap_or(&[]);
            at += len;
            if len == 0 {
                continue;
            }
            let norm = info.norms[stream];
            let mut once: Score = 0.0;
            if self.perfect {
                // Four sums, so that the additions need not wait on each other.
                let mut sums = [0.0; 4];
                let mut quads = terms.chunks_exact(4);
                for quad in &mut quads {
                    for (sum, &packed) in sums.iter_mut().zip(quad) {
                        *sum += self.once(packed, norm, &mut score);
                    }
                }
                for &packed in quads.remainder() {
                    sums[0] += self.once(packed, norm, &mut score);
                }
                once = (sums[0] + sums[1]) + (sums[2] + sums[3]);
            } else {
                for &packed in terms {
                    if let Some(slot) = self.find(packed >> 8) {
                        score += self.full(slot, norm, packed);
                    }
                }
            }
            score += once * self.ratios[stream][usize::from(norm)];
        }
        score
    }

    /// With a perfect hash: the weight of a row term at frequency 1 if it is
    /// in the query (0 if not); a match at another frequency is added to
    /// `score` in full instead.
    #[inline(always)]
    fn once(&self, packed: u32, norm: u8, score: &mut Score) -> Score {
        let id = packed >> 8;
        let slot = self.slot(id);
        let (key, weight) = self.slots[slot];
        if packed & 0xff == 1 {
            // A miss is as common as a hit here, and a mispredicted branch
            // costs more than loading the weight either way.
            std::hint::select_unpredictable(key == id, weight, 0.0)
        } else {
            if key == id {
                *score += self.full(slot, norm, packed);
            }
            0.0
        }
    }

    /// tantivy's BM25 of the term in `slot` for a packed row term.
    fn full(&self, slot: usize, norm: u8, packed: u32) -> Score {
        let term = &self.terms[self.owners[slot] as usize];
        term.bm25.score(norm, packed & 0xff)
    }
}

/// Asks the processor to bring `items` into cache without waiting for them
/// (an instruction that cannot fault; `pulp` makes it callable safely).
#[cfg(target_arch = "x86_64")]
fn prefetch<T>(items: &[T]) {
    use pulp::core_arch::x86::Sse;
    use std::sync::OnceLock;
    static SSE: OnceLock<Option<Sse>> = OnceLock::new();
    let Some(sse) = *SSE.get_or_init(Sse::try_new) else { return };
    let bytes = std::mem::size_of_val(items);
    let start = items.as_ptr().cast::<i8>();
    // Every 64-byte line, and the line a misaligned run ends in.
    for at in (0..bytes).step_by(64).chain(bytes.checked_sub(1)) {
        sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(start.wrapping_add(at));
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch<T>(_items: &[T]) {}

/// The `k` best entries for the sum of `terms`' weighted BM25 scores, each
/// with its best document, among the entries `filter` accepts; best first.
/// Documents matching no term are never returned.
///
/// With `forward`, candidates are scored from their own terms; without, by
/// seeking each term's postings to them (the body query: answers are long,
/// and their terms are not kept).
pub(crate) struct TopK<'a> {
    pub searcher: &'a Searcher,
    pub docs: &'a DocTable,
    pub scopes: &'a Scopes,
    pub bounds: &'a Bounds,
    pub forward: Option<&'a Forward>,
    pub filter: Filter,
    pub k: usize,
    /// See [`Ranking::candidate_postings`](super::Ranking::candidate_postings).
    pub budget: usize,
}

impl TopK<'_> {
    /// Each term's BM25 weight, bound and forward-index id, leaving out
    /// terms no document has.
    fn prepare(&self, terms: &[WeightedTerm]) -> tantivy::Result<(Vec<QueryTerm>, TermIds)> {
        let searcher = self.searcher;
        let mut query: Vec<QueryTerm> = Vec::with_capacity(terms.len());
        let mut ids: Vec<(u32, usize)> = Vec::new();
        let mut fields: Vec<(Field, FieldStats)> = Vec::new();
        for t in terms.iter().filter(|t| t.boost > 0.0) {
            let field = t.term.field();
            let stats = match fields.iter().find(|(f, _)| *f == field) {
                Some((_, stats)) => stats,
                None => {
                    fields.push((field, self.bounds.field(searcher, field)?));
                    &fields[fields.len() - 1].1
                }
            };
            let known = self.bounds.get(searcher, stats, &t.term)?;
            let bound = known.bound * t.boost;
            if bound <= 0.0 {
                continue;
            }
            if let Some(id) = self.forward.and_then(|f| f.term_id(t.stream, &t.text)) {
                ids.push((id, query.len()));
            }
            let bm25 = stats.weight(known.idf, t.boost);
            query.push(QueryTerm { term: t.term.clone(), bound, bm25, stream: usize::from(stream_tag(t.stream)) });
        }
        Ok((query, ids))
    }

    pub fn run(&self, terms: &[WeightedTerm]) -> tantivy::Result<Vec<(Score, DocRef)>> {
        if self.budget == usize::MAX {
            return self.exhaustive(terms);
        }
        let searcher = self.searcher;
        let (query, ids) = self.prepare(terms)?;
        let rescorer = self.forward.map(|forward| ForwardScorer::new(forward, &ids, &query));
        let mut top = TopEntries::new(self.k);
        let open = self.filter.is_open();
        let total_docs = searcher.num_docs().max(1);
        for reader in searcher.segment_readers() {
            let table = self.docs.segment(reader)?;
            // The segment's share of the candidate budget.
            let share = (self.budget as u64).saturating_mul(u64::from(reader.num_docs())) / total_docs;
            let mut cursors = Vec::with_capacity(query.len());
            for term in &query {
                let Some(scorer) = TermPostings::open(reader, &term.term, &term.bm25)? else { continue };
                let doc = scorer.doc();
                if doc != TERMINATED {
                    cursors.push(Cursor { scorer, bound: term.bound, doc });
                }
            }

            let alive = reader.alive_bitset();
            let accept = |doc: DocId| {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    return None;
                }
                let info = table.get(doc as usize)?;
                let passes = open || self.scopes.scopes.get(info.ord as usize).is_some_and(|s| self.filter.accepts(s));
                passes.then_some(info)
            };
            match &rescorer {
                Some(rescorer) => max_score_forward(&mut cursors, &mut top, share.max(1), &table, accept, rescorer),
                None => max_score_seek(&mut cursors, &mut top, share.max(1), accept),
            }
        }
        Ok(top.kept)
    }
}

impl TopK<'_> {
    /// Scores every document that matches any term, with tantivy's union
    /// (which walks the postings in windows and is the fastest way to visit
    /// them all); the filter and the per-entry top k apply to each.
    fn exhaustive(&self, terms: &[WeightedTerm]) -> tantivy::Result<Vec<(Score, DocRef)>> {
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .filter(|t| t.boost > 0.0)
            .map(|t| {
                let term: Box<dyn Query> = Box::new(TermQuery::new(t.term.clone(), IndexRecordOption::WithFreqs));
                (Occur::Should, Box::new(BoostQuery::new(term, t.boost)) as Box<dyn Query>)
            })
            .collect();
        let mut top = TopEntries::new(self.k);
        if clauses.is_empty() {
            return Ok(top.kept);
        }
        let weight = BooleanQuery::new(clauses).weight(EnableScoring::enabled_from_searcher(self.searcher))?;
        let open = self.filter.is_open();
        for reader in self.searcher.segment_readers() {
            let table = self.docs.segment(reader)?;
            let alive = reader.alive_bitset();
            let mut threshold = top.threshold();
            weight.for_each(reader, &mut |doc, score| {
                if score < threshold || alive.is_some_and(|a| a.is_deleted(doc)) {
                    return;
                }
                let Some(info) = table.get(doc as usize) else { return };
                if open || self.scopes.scopes.get(info.ord as usize).is_some_and(|s| self.filter.accepts(s)) {
                    top.offer(score, info.doc_ref());
                    threshold = top.threshold();
                }
            })?;
        }
        Ok(top.kept)
    }
}

/// How many candidates the forward path gathers before scoring them: their
/// table reads are independent, so the processor overlaps the cache misses
/// (about 100 ns each) instead of paying them one after another, and so do
/// the prefetches of their rows. The threshold lags by at most one batch,
/// which costs a little extra scoring and never changes the result.
const BATCH: usize = 32;

/// The MaxScore plan of one segment: cursors ordered commonest first,
/// `reach[i]` the most terms 0..=i can add together, and the first
/// candidate-producing term.
///
/// Terms before `essential` do not produce candidates: the budget leaves
/// the commonest out, and once the threshold passes their summed bounds
/// they could not lift a document into the top k on their own anyway.
fn plan(cursors: &mut [Cursor], budget: u64, threshold: Score) -> (Vec<Score>, usize) {
    // Commonest first: those are the terms that cost most to walk and that
    // say least about which phrasing is meant.
    cursors.sort_by(|a, b| b.scorer.size_hint().cmp(&a.scorer.size_hint()).then(a.bound.total_cmp(&b.bound)));
    let reach: Vec<Score> = cursors
        .iter()
        .scan(0.0, |sum, c| {
            *sum += c.bound;
            Some(*sum)
        })
        .collect();
    let mut essential = cursors.len() - 1;
    let mut cost = u64::from(cursors[essential].scorer.size_hint());
    while essential > 0 {
        let next = cost + u64::from(cursors[essential - 1].scorer.size_hint());
        if next > budget {
            break;
        }
        cost = next;
        essential -= 1;
    }
    while essential < cursors.len() && reach[essential] < threshold {
        essential += 1;
    }
    (reach, essential)
}

fn reach_below(reach: &[Score], essential: usize) -> Score {
    if essential == 0 {
        0.0
    } else {
        reach[essential - 1]
    }
}

/// The next document any candidate-producing term matches, and the sum of
/// the bounds of the terms that match it; the cursors move past it.
fn next_candidate(cursors: &mut [Cursor]) -> Option<(DocId, Score)> {
    let doc = cursors.iter().map(|c| c.doc).min().unwrap_or(TERMINATED);
    if doc == TERMINATED {
        return None;
    }
    let mut upper: Score = 0.0;
    for cursor in cursors.iter_mut() {
        if cursor.doc == doc {
            upper += cursor.bound;
            cursor.advance();
        }
    }
    Some((doc, upper))
}

/// MaxScore over one segment's cursors, scoring candidates from the forward
/// index in batches. `accept` maps a document to its [`DocInfo`] (in
/// `table`), or `None` when it is filtered out. Only the strongest terms whose postings fit in
/// `budget` (and always the strongest one) produce candidates from the
/// start; see `Ranking::candidate_postings`.
fn max_score_forward<'i>(
    cursors: &mut [Cursor],
    top: &mut TopEntries,
    budget: u64,
    table: &[DocInfo],
    accept: impl Fn(DocId) -> Option<&'i DocInfo>,
    rescorer: &ForwardScorer<'_>,
) {
    if cursors.is_empty() {
        return;
    }
    let mut threshold = top.threshold();
    let (reach, mut essential) = plan(cursors, budget, threshold);
    let mut batch: Vec<DocId> = Vec::with_capacity(BATCH);
    let mut infos: Vec<&DocInfo> = Vec::with_capacity(BATCH);
    let mut done = false;
    while !done && essential < cursors.len() {
        batch.clear();
        while batch.len() < BATCH {
            let Some((doc, upper)) = next_candidate(&mut cursors[essential..]) else {
                done = true;
                break;
            };
            // Bounds first: they need no memory beyond the cursors.
            if upper + reach_below(&reach, essential) >= threshold {
                batch.push(doc);
                // The table is too large for the cache; ask for the
                // candidate's entry while the next ones are found.
                prefetch(table.get(doc as usize..=doc as usize).unwrap_or(&[]));
            }
        }
        infos.clear();
        infos.extend(batch.iter().filter_map(|&doc| accept(doc)));
        rescorer.prefetch(&infos);
        for info in &infos {
            let score = rescorer.score(info);
            if score >= threshold {
                top.offer(score, info.doc_ref());
                threshold = top.threshold();
            }
        }
        while essential < cursors.len() && reach[essential] < threshold {
            essential += 1;
        }
    }
}

/// MaxScore over one segment's cursors, scoring candidates by seeking the
/// other terms' postings to them (the body query, whose long answers have
/// no forward index). Arguments as for [`max_score_forward`].
fn max_score_seek<'i>(
    cursors: &mut [Cursor],
    top: &mut TopEntries,
    budget: u64,
    accept: impl Fn(DocId) -> Option<&'i DocInfo>,
) {
    if cursors.is_empty() {
        return;
    }
    let mut threshold = top.threshold();
    let (reach, mut essential) = plan(cursors, budget, threshold);
    while essential < cursors.len() {
        let doc = cursors[essential..].iter().map(|c| c.doc).min().unwrap_or(TERMINATED);
        if doc == TERMINATED {
            break;
        }
        let mut upper: Score = 0.0;
        for cursor in &cursors[essential..] {
            if cursor.doc == doc {
                upper += cursor.bound;
            }
        }
        let promising = upper + reach_below(&reach, essential) >= threshold;
        let accepted = if promising { accept(doc) } else { None };
        let mut score: Score = 0.0;
        for cursor in &mut cursors[essential..] {
            if cursor.doc == doc {
                if accepted.is_some() {
                    score += cursor.scorer.score();
                }
                cursor.advance();
            }
        }
        let Some(info) = accepted else { continue };
        // The weaker terms, strongest first, while they can still matter.
        let mut i = essential;
        while i > 0 && score + reach[i - 1] >= threshold {
            i -= 1;
            let cursor = &mut cursors[i];
            if cursor.doc < doc {
                cursor.seek(doc);
            }
            if cursor.doc == doc {
                score += cursor.scorer.score();
            }
        }
        if score >= threshold {
            top.offer(score, info.doc_ref());
            threshold = top.threshold();
            while essential < cursors.len() && reach[essential] < threshold {
                essential += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::index::{build, SearchIndex};
    use crate::model::Platform;
    use crate::search::{Ranking, SearchRequest};

    /// The sample knowledge base, indexed into a temporary folder.
    fn sample() -> (tempfile::TempDir, SearchIndex) {
        let kb = crate::kb::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/kb"))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        build(&kb, dir.path(), &|_, _| {}).unwrap();
        let index = SearchIndex::open(dir.path()).unwrap();
        (dir, index)
    }

    const QUERIES: &[&str] = &[
        "亲在吗，我昨天拍的那双靴子42码的今天能发顺丰不，急用",
        "天猫能开发票吗",
        "七天无理由退货运费谁出",
        "拼多多没发货怎么退款",
        "衣服洗了会缩水吗",
        "怎么改价",
        "完全不相干的问题比如天气",
    ];

    /// MaxScore with forward-index scoring, given every term as a candidate
    /// producer, must return exactly what tantivy's exhaustive union returns:
    /// the same entries in the same order with the same scores, with and
    /// without filters.
    #[test]
    fn maxscore_with_forward_scoring_matches_the_exhaustive_union() {
        let (_dir, index) = sample();
        let exhaustive = Ranking { candidate_postings: usize::MAX, ..Ranking::default() };
        // Not MAX, so the MaxScore path runs, but large enough to be exact.
        let maxscore = Ranking { candidate_postings: usize::MAX - 1, exhaustive_below: 0, ..Ranking::default() };
        let filtered = |q| SearchRequest {
            product: Some("SKU-1001"),
            platform: Some(Platform::Tmall),
            public_only: true,
            ..SearchRequest::new(q)
        };
        // A message pasting many questions at once: hundreds of terms.
        let pasted: String = index.entries().iter().take(40).map(|e| e.question.as_str()).collect();
        for query in QUERIES.iter().copied().chain([pasted.as_str()]) {
            for request in [SearchRequest::new(query), filtered(query)] {
                let a = index.search_with(&request, &exhaustive).unwrap();
                let b = index.search_with(&request, &maxscore).unwrap();
                let ids = |r: &crate::search::SearchResults| r.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
                assert_eq!(ids(&a), ids(&b), "{query} ({request:?})");
                for (x, y) in a.hits.iter().zip(&b.hits) {
                    assert!(
                        (x.score - y.score).abs() <= 1e-4 * x.score.max(1.0),
                        "{query}: {} vs {}",
                        x.score,
                        y.score
                    );
                }
                assert_eq!(a.confidence, b.confidence, "{query}");
            }
        }
    }

    /// The scorer's two lookups (a perfect hash, and linear probing for
    /// queries too long for one) give every phrasing the same score, and it
    /// is tantivy's BM25 of the phrasing's matching terms.
    #[test]
    fn perfect_hash_and_probing_score_every_phrasing_alike() {
        let (_dir, index) = sample();
        let searcher = index.reader.searcher();
        let f = &index.fields;
        let pasted: String = index.entries().iter().take(12).map(|e| e.question.as_str()).collect();
        let parts = [crate::search::understand::Part { analysis: index.analyzer.analyze(&pasted), weight: 1.0 }];
        let streams = [
            (f.q_words, crate::analysis::Stream::Words, 0.5),
            (f.q_bigrams, crate::analysis::Stream::Bigrams, 0.5),
            (f.q_chars, crate::analysis::Stream::Chars, 2.0),
        ];
        let terms = crate::search::weighted_terms(&streams, &parts);
        let top = super::TopK {
            searcher: &searcher,
            docs: &index.docs,
            scopes: &index.scopes,
            bounds: &index.bounds,
            forward: Some(&index.forward),
            filter: index.scopes.filter(None, None, false, None),
            k: 10,
            budget: 1000,
        };
        let (query, ids) = top.prepare(&terms).unwrap();
        assert!(ids.len() > 100, "{} terms", ids.len());
        let perfect = super::ForwardScorer::new(&index.forward, &ids, &query);
        assert!(perfect.perfect);
        let ratios = super::ForwardScorer::ratios(&query);
        let bits = (ids.len() * 4).next_power_of_two().trailing_zeros();
        let probing = super::ForwardScorer::table(&index.forward, &ids, &query, ratios, bits, 0x9E37_79B1, false);
        let mut matched = 0;
        for reader in searcher.segment_readers() {
            let table = index.docs.segment(reader).unwrap();
            for (doc, info) in table.iter().enumerate().filter(|(_, info)| info.len() > 0) {
                let (a, b) = (perfect.score(info), probing.score(info));
                assert!((a - b).abs() <= 1e-4 * a.max(1.0), "doc {doc}: {a} vs {b}");
                // tantivy's own score of the document for the same terms.
                let mut expected = 0.0;
                for term in &query {
                    if let Some(mut postings) = super::TermPostings::open(reader, &term.term, &term.bm25).unwrap() {
                        let doc = doc as u32;
                        let at = if postings.doc() < doc { postings.seek(doc) } else { postings.doc() };
                        if at == doc {
                            expected += postings.score();
                        }
                    }
                }
                assert!((a - expected).abs() <= 1e-4 * expected.max(1.0), "doc {doc}: {a} vs tantivy {expected}");
                matched += usize::from(expected > 0.0);
            }
        }
        assert!(matched > 50, "only {matched} phrasings share a term with the query");
    }

    /// Two opens of one index answer every buyer message identically, to
    /// the last bit of the confidence evidence: nothing may depend on a hash
    /// map's iteration order (each open seeds its maps differently, as each
    /// process does), or a coverage near a threshold, or a choice among
    /// equally likely pinyin readings, differs from run to run.
    #[test]
    fn two_opens_of_an_index_answer_alike() {
        let (dir, first) = sample();
        let second = SearchIndex::open(dir.path()).unwrap();
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/queries/buyer-messages.jsonl"))
            .unwrap();
        let queries: Vec<String> = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|v| v["query"].as_str().map(str::to_string))
            .collect();
        assert!(queries.len() > 300);
        for query in &queries {
            let request = SearchRequest::new(query);
            let (a, b) = (first.search(&request).unwrap(), second.search(&request).unwrap());
            let ids = |r: &crate::search::SearchResults| r.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&a), ids(&b), "{query}");
            assert_eq!(a.confidence, b.confidence, "{query}");
            let coverage = |r: &crate::search::SearchResults| {
                r.evidence
                    .as_ref()
                    .map(|e| (e.query_coverage.to_bits(), e.match_coverage.to_bits(), e.margin.to_bits()))
            };
            assert_eq!(coverage(&a), coverage(&b), "{query}");
        }
    }

    /// A budget so small that only the rarest term finds candidates still
    /// returns only entries the filter admits, and real matches: an entry
    /// may miss the phrasing (or body) that only common terms found, so its
    /// score can be lower than the exhaustive one, never higher.
    #[test]
    fn a_tight_budget_keeps_filters_and_exact_scores() {
        let (_dir, index) = sample();
        let exhaustive = Ranking { candidate_postings: usize::MAX, ..Ranking::default() };
        let tight = Ranking { candidate_postings: 1, exhaustive_below: 0, ..Ranking::default() };
        for query in QUERIES {
            let request =
                SearchRequest { platform: Some(Platform::Pdd), public_only: true, ..SearchRequest::new(query) };
            let all = index.search_with(&SearchRequest { limit: 100, ..request.clone() }, &exhaustive).unwrap();
            let some = index.search_with(&request, &tight).unwrap();
            for hit in &some.hits {
                let entry = index.entry(&hit.id).unwrap();
                assert!(entry.platforms.is_empty() || entry.platforms.contains(&Platform::Pdd), "{}", hit.id);
                assert_eq!(entry.audience, crate::model::Audience::Public, "{}", hit.id);
                let same = all.hits.iter().find(|h| h.id == hit.id).expect("a budgeted hit is a real match");
                assert!(hit.score <= same.score + 1e-4 * same.score.max(1.0), "{query}: {}", hit.id);
            }
        }
    }
}
