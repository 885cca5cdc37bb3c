//! Groups unanswered questions into clusters of paraphrases.
//!
//! Each question becomes a TF-IDF vector over its analysed words, single
//! characters and character bigrams (the same analysis as search, so synonyms, traditional
//! characters and full-width text already agree). IDF comes from the
//! questions together with the knowledge base's phrasings: words every
//! entry uses (靴子, 可以) weigh little, the words that tell two missing
//! questions apart (防水 vs 机洗) weigh much.
//!
//! Clustering is greedy and deterministic: questions in order of frequency
//! join the cluster whose centroid is most similar (cosine ≥ threshold) or
//! start a new one; then every question is re-assigned to its best centroid
//! once, which undoes most order effects of the first pass.

use std::collections::{BTreeMap, HashMap};

use crate::analysis::Analyzer;

/// Cosine similarity at which two questions count as the same question.
/// Chosen on the paraphrase groups of `tests/queries/gap-replay.jsonl`
/// (README, "FAQ gaps").
pub const SAME_QUESTION: f32 = 0.30;

/// Similarity between a cluster and its nearest entry's closest phrasing
/// from which kefu suggests adding the questions to that entry as 相似问
/// rather than writing a new entry. Lexical similarity is a weak judge of
/// meaning, so this is stricter than [`SAME_QUESTION`]: on the replay set it
/// suggests the right entry for half the answerable-but-unconfident
/// clusters it fires on, and fires for 1 of 54 clusters of new questions.
pub const ADD_SIMILAR: f32 = 0.45;

/// Weight of a character bigram relative to a word or a character. Buyers
/// rephrase with the same characters in new words (半码 / 半个码 / 42半),
/// so single characters carry most of the similarity.
const BIGRAM_WEIGHT: f32 = 0.5;

/// A sparse, L2-normalised term vector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vector(Vec<(u32, f32)>);

impl Vector {
    /// Cosine similarity (both vectors are normalised).
    pub fn cosine(&self, other: &Vector) -> f32 {
        let (mut i, mut j, mut sum) = (0, 0, 0.0);
        let (a, b) = (&self.0, &other.0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += a[i].1 * b[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        sum
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn normalized(mut terms: Vec<(u32, f32)>) -> Vector {
        terms.sort_unstable_by_key(|t| t.0);
        let norm = terms.iter().map(|t| t.1 * t.1).sum::<f32>().sqrt();
        if norm > 0.0 {
            for t in &mut terms {
                t.1 /= norm;
            }
        }
        Vector(terms)
    }
}

/// Turns texts into TF-IDF vectors that can be compared with each other.
pub struct Vectorizer<'a> {
    analyzer: &'a Analyzer,
    ids: HashMap<String, u32>,
    df: Vec<u32>,
    docs: u32,
}

impl<'a> Vectorizer<'a> {
    /// Learns document frequencies from `corpus` (questions and phrasings).
    pub fn new<'t>(analyzer: &'a Analyzer, corpus: impl IntoIterator<Item = &'t str>) -> Self {
        let mut v = Vectorizer { analyzer, ids: HashMap::new(), df: Vec::new(), docs: 0 };
        for text in corpus {
            let mut seen: Vec<u32> = v.terms(text).into_iter().map(|(id, _)| id).collect();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                v.df[id as usize] += 1;
            }
            v.docs += 1;
        }
        v
    }

    /// Term ids and raw weights of a text, registering unseen terms.
    fn terms(&mut self, text: &str) -> Vec<(u32, f32)> {
        let analysis = self.analyzer.analyze(text);
        let mut out: Vec<(u32, f32)> = Vec::new();
        // Chinese words are left out: jieba segments paraphrases differently
        // (能不能 / 能 / 不能), which made clusters worse on the replay set
        // (pairwise recall 0.15 → 0.28 at the same precision without them).
        // Latin and digit words (42, sf, m) stay.
        let words = analysis
            .words
            .iter()
            .filter(|t| t.term.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(|t| (format!("w:{}", t.term), 1.0));
        let chars = analysis.chars.iter().map(|t| (format!("c:{}", t.term), 1.0));
        let bigrams = analysis.bigrams.iter().map(|t| (format!("b:{}", t.term), BIGRAM_WEIGHT));
        for (key, weight) in words.chain(chars).chain(bigrams) {
            let next = self.ids.len() as u32;
            let id = *self.ids.entry(key).or_insert(next);
            if id as usize == self.df.len() {
                self.df.push(0);
            }
            match out.iter_mut().find(|t| t.0 == id) {
                Some(t) => t.1 += weight,
                None => out.push((id, weight)),
            }
        }
        out
    }

    /// The TF-IDF vector of a text.
    pub fn vector(&mut self, text: &str) -> Vector {
        let docs = self.docs.max(1) as f32;
        let terms = self
            .terms(text)
            .into_iter()
            .map(|(id, tf)| {
                let df = self.df[id as usize] as f32;
                let idf = ((docs + 1.0) / (df + 1.0)).ln() + 1.0;
                (id, (1.0 + tf.ln()) * idf)
            })
            .collect();
        Vector::normalized(terms)
    }
}

/// Clusters `vectors` (one per question, with its count); returns clusters
/// as lists of question indexes, largest total count first.
pub fn cluster(vectors: &[Vector], counts: &[u64], threshold: f32) -> Vec<Vec<usize>> {
    // Most-asked first: a frequent question is the best seed for its cluster.
    let mut order: Vec<usize> = (0..vectors.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));

    let mut centroids: Vec<Centroid> = Vec::new();
    let mut assignment = vec![usize::MAX; vectors.len()];
    for &q in &order {
        let best = best_centroid(&centroids, &vectors[q], threshold);
        match best {
            Some(c) => {
                centroids[c].add(&vectors[q], counts[q]);
                assignment[q] = c;
            }
            None => {
                let mut c = Centroid::default();
                c.add(&vectors[q], counts[q]);
                assignment[q] = centroids.len();
                centroids.push(c);
            }
        }
    }
    // One refinement pass against the final centroids.
    let frozen: Vec<Vector> = centroids.iter().map(Centroid::vector).collect();
    for &q in &order {
        let current = assignment[q];
        let mut best = (current, frozen[current].cosine(&vectors[q]));
        for (c, centroid) in frozen.iter().enumerate() {
            let sim = centroid.cosine(&vectors[q]);
            if sim > best.1 + 1e-6 && sim >= threshold {
                best = (c, sim);
            }
        }
        assignment[q] = best.0;
    }

    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &q in &order {
        groups.entry(assignment[q]).or_default().push(q);
    }
    let mut clusters: Vec<Vec<usize>> = groups.into_values().collect();
    let total = |c: &Vec<usize>| c.iter().map(|&q| counts[q]).sum::<u64>();
    clusters.sort_by(|a, b| total(b).cmp(&total(a)).then(a[0].cmp(&b[0])));
    clusters
}

fn best_centroid(centroids: &[Centroid], v: &Vector, threshold: f32) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, c) in centroids.iter().enumerate() {
        let sim = c.cosine(v);
        if sim >= threshold && best.is_none_or(|(_, b)| sim > b) {
            best = Some((i, sim));
        }
    }
    best.map(|(i, _)| i)
}

/// Running sum of member vectors (weighted by √count so one very frequent
/// question does not pin the centroid).
#[derive(Debug, Clone, Default)]
struct Centroid {
    sum: HashMap<u32, f32>,
    norm: f32,
}

impl Centroid {
    fn add(&mut self, v: &Vector, count: u64) {
        let w = (count as f32).sqrt();
        for &(id, x) in &v.0 {
            *self.sum.entry(id).or_default() += w * x;
        }
        self.norm = self.sum.values().map(|x| x * x).sum::<f32>().sqrt();
    }

    fn cosine(&self, v: &Vector) -> f32 {
        if self.norm == 0.0 {
            return 0.0;
        }
        v.0.iter().map(|(id, x)| self.sum.get(id).map_or(0.0, |s| s * x)).sum::<f32>() / self.norm
    }

    fn vector(&self) -> Vector {
        Vector::normalized(self.sum.iter().map(|(&id, &x)| (id, x)).collect())
    }
}

/// The centroid of several vectors, for comparing a cluster with an entry.
pub fn centroid(vectors: &[&Vector], counts: &[u64]) -> Vector {
    let mut c = Centroid::default();
    for (v, &n) in vectors.iter().zip(counts) {
        c.add(v, n);
    }
    c.vector()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::AnalysisConfig;

    #[test]
    fn paraphrases_cluster_and_different_questions_do_not() {
        let analyzer = Analyzer::new(&AnalysisConfig::default()).unwrap();
        let questions =
            ["靴子能防水吗", "这靴子防不防水", "下雨天穿靴子会不会进水", "靴子可以机洗吗", "靴子能不能放洗衣机洗"];
        let mut vectorizer = Vectorizer::new(&analyzer, questions);
        let vectors: Vec<Vector> = questions.iter().map(|q| vectorizer.vector(q)).collect();
        let clusters = cluster(&vectors, &[3, 1, 1, 2, 1], SAME_QUESTION);
        let of = |q: usize| clusters.iter().position(|c| c.contains(&q)).unwrap();
        assert_eq!(of(0), of(1));
        assert_eq!(of(3), of(4));
        assert_ne!(of(0), of(3));
    }
}
