//! Chinese analysis: the same pipeline turns entries and queries into terms.
//!
//! normalise (NFKC, lower case, traditional → simplified) → jieba
//! segmentation with the knowledge base's `dict.txt` → drop chatty filler →
//! map synonyms to their canonical word → three term streams:
//! - **words**: jieba search-mode words (a long word also yields the
//!   dictionary words inside it);
//! - **bigrams** and **chars**: character n-grams inside each run of
//!   meaningful text, so substrings and mis-segmented words still match
//!   (`灯` finds `大灯`). Latin letters and digits count as one unit per word.

pub mod clauses;
mod normalize;
mod options;
pub mod pinyin;
mod stopwords;
pub mod tokenizer;
mod vocab;

use std::collections::{HashMap, HashSet};

use jieba_rs::Jieba;
use serde::{Deserialize, Serialize};

use crate::kb::{DictWord, SynonymGroup};
pub use normalize::{normalize, Normalized, Simplifier};
pub use options::{QueryOptions, UnknownTechnique};

/// The shop's vocabulary that the analysis depends on. It is saved with each
/// index so that queries are analysed exactly as the indexed text was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisConfig {
    /// The shop's `kb/dict.txt` (the built-in vocabulary is added when
    /// `options.domain_vocab` is on).
    pub dict: Vec<DictWord>,
    /// The shop's `kb/synonyms.txt`.
    pub synonyms: Vec<SynonymGroup>,
    /// The techniques the index was built with; searches use the same.
    #[serde(default)]
    pub options: QueryOptions,
}

/// Why the analyzer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// OpenCC's built-in conversion tables failed to load.
    #[error("cannot load traditional→simplified tables: {0}")]
    Simplifier(String),
}

/// One term with the byte range of the original text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub term: String,
    pub start: usize,
    pub end: usize,
}

/// The term streams of one text (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub words: Vec<Token>,
    pub bigrams: Vec<Token>,
    pub chars: Vec<Token>,
}

impl Analysis {
    /// Whether nothing searchable is left (empty text, or only filler).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.chars.is_empty()
    }
}

/// Which term stream a tantivy field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Words,
    Bigrams,
    Chars,
}

impl Analysis {
    pub fn stream(&self, stream: Stream) -> &[Token] {
        match stream {
            Stream::Words => &self.words,
            Stream::Bigrams => &self.bigrams,
            Stream::Chars => &self.chars,
        }
    }
}

/// The analysis pipeline, built once per index and shared by indexing and search.
pub struct Analyzer {
    jieba: Jieba,
    simplifier: Simplifier,
    /// Normalised synonym → normalised canonical word.
    synonyms: HashMap<String, String>,
    /// Normalised canonical word → its other normalised spellings.
    variants: HashMap<String, Vec<String>>,
    filler: HashSet<&'static str>,
    options: QueryOptions,
}

/// A meaningful run unit: one Chinese character, or one Latin/digit word.
struct Unit {
    text: String,
    start: usize,
    end: usize,
}

impl Analyzer {
    pub fn new(config: &AnalysisConfig) -> Result<Self, AnalysisError> {
        let simplifier = Simplifier::new().map_err(|e| AnalysisError::Simplifier(e.to_string()))?;
        let mut jieba = Jieba::new();
        let (dict, groups) = if config.options.domain_vocab {
            vocab::merge(&config.dict, &config.synonyms)
        } else {
            (config.dict.clone(), config.synonyms.clone())
        };
        let norm = |text: &str| {
            let mut n = normalize(&simplifier, text);
            if config.options.mixed_script {
                n.fold_numerals();
            }
            n.text
        };
        for word in &dict {
            let text = norm(&word.word);
            jieba.add_word(&text, word.freq, word.tag.as_deref());
        }
        let mut synonyms = HashMap::new();
        let mut variants: HashMap<String, Vec<String>> = HashMap::new();
        for group in &groups {
            let canonical = norm(&group.0[0]);
            for word in &group.0 {
                let text = norm(word);
                // A synonym must come out of segmentation whole to be replaced.
                if !jieba.has_word(&text) {
                    jieba.add_word(&text, None, None);
                }
                if text != canonical {
                    variants.entry(canonical.clone()).or_default().push(text.clone());
                    synonyms.insert(text, canonical.clone());
                }
            }
        }
        Ok(Analyzer {
            jieba,
            simplifier,
            synonyms,
            variants,
            filler: stopwords::FILLER.iter().copied().collect(),
            options: config.options,
        })
    }

    /// The other spellings that analysis turns into `canonical` (synonyms,
    /// normalised): what a highlighter must also look for in raw text.
    pub fn variants(&self, canonical: &str) -> &[String] {
        self.variants.get(canonical).map_or(&[], Vec::as_slice)
    }

    /// Normalises text the way every indexed and searched text is.
    pub fn normalize(&self, text: &str) -> Normalized {
        let mut norm = normalize(&self.simplifier, text);
        if self.options.mixed_script {
            norm.fold_numerals();
        }
        norm
    }

    /// The techniques this analyzer (and its index) was built with.
    pub fn options(&self) -> &QueryOptions {
        &self.options
    }

    /// Whether jieba knows `word` (normalised) as a dictionary word.
    pub fn has_word(&self, word: &str) -> bool {
        self.jieba.has_word(word)
    }

    /// Whether `word` (normalised) is chatty filler that analysis drops.
    pub fn is_filler(&self, word: &str) -> bool {
        self.filler.contains(word)
    }

    /// The canonical word `word` (normalised) is indexed as, if it is a synonym.
    pub fn canonical(&self, word: &str) -> Option<&str> {
        self.synonyms.get(word).map(String::as_str)
    }

    /// Runs the whole pipeline on `text`. Token ranges refer to `text`.
    pub fn analyze(&self, text: &str) -> Analysis {
        let norm = self.normalize(text);
        let mut out = Analysis::default();
        let mut run: Vec<Unit> = Vec::new();
        for token in self.jieba.cut(&norm.text, true) {
            let word = token.word;
            if !word.chars().any(char::is_alphanumeric) || self.filler.contains(word) {
                flush_run(&mut run, &mut out);
                continue;
            }
            let (start, end) = norm.original_range(token.byte_start, token.byte_end);
            let canonical = self.synonyms.get(word).map_or(word, String::as_str);
            self.push_words(canonical, start, end, &mut out.words);
            if canonical.chars().all(|c| c.is_ascii_alphanumeric()) {
                run.push(Unit { text: canonical.to_string(), start, end });
            } else {
                let replaced = canonical != word;
                for (i, c) in canonical.char_indices() {
                    // A replaced synonym has no character-level origin: give
                    // each of its characters the whole original span.
                    let (s, e) = if replaced {
                        (start, end)
                    } else {
                        norm.original_range(token.byte_start + i, token.byte_start + i + c.len_utf8())
                    };
                    run.push(Unit { text: c.to_string(), start: s, end: e });
                }
            }
        }
        flush_run(&mut run, &mut out);
        out
    }

    /// Emits a word and, like jieba's search mode, the dictionary words of two
    /// and three characters inside it (中国农业发展银行 → 农业, 银行, …).
    fn push_words(&self, word: &str, start: usize, end: usize, words: &mut Vec<Token>) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        let n = chars.len();
        let byte_at = |k: usize| if k == n { word.len() } else { chars[k].0 };
        for len in [2, 3] {
            if n > len {
                for i in 0..=n - len {
                    let sub = &word[byte_at(i)..byte_at(i + len)];
                    if self.jieba.has_word(sub) && !self.filler.contains(sub) {
                        words.push(Token { term: sub.to_string(), start, end });
                    }
                }
            }
        }
        words.push(Token { term: word.to_string(), start, end });
    }
}

fn flush_run(run: &mut Vec<Unit>, out: &mut Analysis) {
    for (i, unit) in run.iter().enumerate() {
        out.chars.push(Token { term: unit.text.clone(), start: unit.start, end: unit.end });
        if let Some(next) = run.get(i + 1) {
            out.bigrams.push(Token { term: format!("{}{}", unit.text, next.text), start: unit.start, end: next.end });
        }
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(tokens: &[Token]) -> Vec<&str> {
        tokens.iter().map(|t| t.term.as_str()).collect()
    }

    fn analyzer() -> Analyzer {
        let config = AnalysisConfig {
            dict: vec![DictWord { word: "运费险".into(), freq: Some(2000), tag: None }],
            synonyms: vec![SynonymGroup(vec!["顺丰".into(), "SF".into(), "顺丰快递".into()])],
            options: QueryOptions { domain_vocab: false, ..QueryOptions::default() },
        };
        Analyzer::new(&config).unwrap()
    }

    #[test]
    fn filler_is_dropped_and_breaks_runs() {
        let a = analyzer().analyze("亲在吗，请问有运费险吗");
        assert_eq!(terms(&a.words), vec!["有", "运费", "运费险"]);
        assert_eq!(terms(&a.bigrams), vec!["有运", "运费", "费险"]);
    }

    #[test]
    fn synonyms_map_to_the_canonical_word() {
        let an = analyzer();
        assert_eq!(terms(&an.analyze("ＳＦ").words), vec!["顺丰"]);
        assert_eq!(terms(&an.analyze("顺丰快递").words), vec!["顺丰"]);
    }

    #[test]
    fn token_ranges_point_into_the_original() {
        let text = "運費險";
        let a = analyzer().analyze(text);
        let t = a.words.iter().find(|t| t.term == "运费险").unwrap();
        assert_eq!(&text[t.start..t.end], "運費險");
    }
}
