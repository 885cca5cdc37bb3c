//! Snippets: a short plain-text excerpt of the answer around the words the
//! query matched, with the matched ranges marked.
//!
//! Finding the matches is the costly part: analysing an answer (jieba,
//! traditional → simplified, NFKC) took about 30 µs, ten hits per search,
//! and was most of a search on a small knowledge base. Most answers are
//! already in normal form (simplified, half-width letters and digits; case
//! and punctuation do not matter to matching),
//! so once an answer is known to be normal its matches are found by plain
//! substring search for the query's words, bigrams and their synonyms'
//! spellings, in a few microseconds. Whether an answer is normal is decided
//! the first time it is shown and remembered ([`Plainness`]); answers that
//! are not normal keep the full analysis.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::analysis::{Analysis, Analyzer};

/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 120;
/// Characters of context kept before the first match.
const LEAD_CHARS: usize = 20;

const UNKNOWN: u8 = 0;
const PLAIN: u8 = 1;
const NOT_PLAIN: u8 = 2;

/// Per entry: is its answer text already in normal form? Learnt lazily,
/// one byte per entry, for one index generation.
#[derive(Debug, Default)]
pub(crate) struct Plainness(Vec<AtomicU8>);

impl Plainness {
    pub fn new(entries: usize) -> Self {
        Plainness((0..entries).map(|_| AtomicU8::new(UNKNOWN)).collect())
    }

    fn is_plain(&self, ord: usize, analyzer: &Analyzer, flat: &str) -> bool {
        let known = self.0.get(ord).map_or(UNKNOWN, |f| f.load(Ordering::Relaxed));
        if known != UNKNOWN {
            return known == PLAIN;
        }
        // Normal form where it matters: every letter, digit and character
        // comes out of normalisation unchanged (up to ASCII case, which keeps
        // byte offsets). Punctuation may change (，→ ,): no term contains it.
        let normal = analyzer.normalize(flat).text;
        let plain = normal.chars().count() == flat.chars().count()
            && normal.chars().zip(flat.chars()).all(|(n, o)| {
                n == o.to_ascii_lowercase()
                        || !(n.is_alphanumeric() || o.is_alphanumeric())
                        // 七天 folded to 7天: the query side is spelled back
                        // in substring_matches.
                        || (n.is_ascii_digit() && numeral_spellings(n).contains(o))
            });
        if let Some(flag) = self.0.get(ord) {
            flag.store(if plain { PLAIN } else { NOT_PLAIN }, Ordering::Relaxed);
        }
        plain
    }
}

/// Returns the snippet and the `[start, end)` character ranges in it that
/// match the query's words or bigrams. `ord` is the entry's ordinal, for
/// `plainness`.
pub fn snippet(
    analyzer: &Analyzer,
    plainness: &Plainness,
    ord: usize,
    answer: &str,
    query: &Analysis,
) -> (String, Vec<[usize; 2]>) {
    let flat = answer.replace('\n', " ");
    let ranges = if plainness.is_plain(ord, analyzer, &flat) {
        substring_matches(analyzer, &flat.to_ascii_lowercase(), query)
    } else {
        analysed_matches(analyzer, &flat, query)
    };
    render(&flat, ranges)
}

/// Byte ranges of every occurrence of the query's words (of two characters
/// or more, or ASCII), bigrams, and the other spellings of its words, in a
/// text already in normal form.
fn substring_matches(analyzer: &Analyzer, text: &str, query: &Analysis) -> Vec<(usize, usize)> {
    let mut wanted: HashSet<&str> = HashSet::new();
    for token in &query.words {
        let word = token.term.as_str();
        if word.chars().count() >= 2 || word.is_ascii() {
            wanted.insert(word);
        }
        wanted.extend(analyzer.variants(word).iter().map(String::as_str));
    }
    wanted.extend(query.bigrams.iter().map(|t| t.term.as_str()));
    // A counted number is folded to a digit (七天 → 7天); the answer may
    // spell it in hanzi.
    let spelled: Vec<String> =
        wanted.iter().filter(|t| t.bytes().any(|b| b.is_ascii_digit())).flat_map(|t| respell(t)).collect();
    wanted.extend(spelled.iter().map(String::as_str));
    let mut ranges = Vec::new();
    for term in wanted {
        if term.is_empty() {
            continue;
        }
        let ascii = term.bytes().all(|b| b.is_ascii_alphanumeric());
        for (at, _) in text.match_indices(term) {
            let end = at + term.len();
            // An ASCII word matches whole words only: `sf`, not `sfx`.
            let bounded = !ascii
                || (!text[..at].ends_with(|c: char| c.is_ascii_alphanumeric())
                    && !text[end..].starts_with(|c: char| c.is_ascii_alphanumeric()));
            if bounded {
                ranges.push((at, end));
            }
        }
    }
    ranges
}

/// The hanzi a folded digit may stand for.
fn numeral_spellings(digit: char) -> &'static str {
    match digit {
        '0' => "零",
        '1' => "一",
        '2' => "二两",
        '3' => "三",
        '4' => "四",
        '5' => "五",
        '6' => "六",
        '7' => "七",
        '8' => "八",
        '9' => "九",
        _ => "",
    }
}

/// `term` with each digit that precedes a hanzi written in hanzi instead
/// (7天 → 七天; 2件 → 二件, 两件).
fn respell(term: &str) -> Vec<String> {
    let chars: Vec<char> = term.chars().collect();
    let mut out = vec![String::new()];
    for (i, &c) in chars.iter().enumerate() {
        let counted = c.is_ascii_digit() && chars.get(i + 1).is_some_and(|n| !n.is_ascii());
        let options: Vec<char> = if counted { numeral_spellings(c).chars().collect() } else { vec![c] };
        out = out.iter().flat_map(|prefix| options.iter().map(move |o| format!("{prefix}{o}"))).collect();
    }
    out.retain(|s| s != term);
    out
}

/// Byte ranges of the answer's own words and bigrams that the query has,
/// through the full analysis (answers with traditional characters, full-
/// width letters, …).
fn analysed_matches(analyzer: &Analyzer, text: &str, query: &Analysis) -> Vec<(usize, usize)> {
    let wanted: HashSet<&str> = query.words.iter().chain(query.bigrams.iter()).map(|t| t.term.as_str()).collect();
    let analysis = analyzer.analyze(text);
    analysis
        .words
        .iter()
        .chain(analysis.bigrams.iter())
        .filter(|t| wanted.contains(t.term.as_str()))
        .map(|t| (t.start, t.end))
        .collect()
}

/// Cuts the snippet around the first match and turns byte ranges into
/// character ranges within it.
fn render(flat: &str, mut ranges: Vec<(usize, usize)>) -> (String, Vec<[usize; 2]>) {
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    // Character index of every byte boundary we need.
    let char_at = |byte: usize| flat[..byte].chars().count();
    let total = flat.chars().count();
    let start = if total <= SNIPPET_CHARS {
        0
    } else {
        merged.first().map_or(0, |&(s, _)| char_at(s).saturating_sub(LEAD_CHARS)).min(total - SNIPPET_CHARS)
    };
    let end = (start + SNIPPET_CHARS).min(total);
    let prefix = if start > 0 { "…" } else { "" };
    let suffix = if end < total { "…" } else { "" };
    let body: String = flat.chars().skip(start).take(end - start).collect();
    let shift = prefix.chars().count();
    let highlights = merged
        .iter()
        .map(|&(s, e)| (char_at(s).max(start), char_at(e).min(end)))
        .filter(|&(s, e)| s < e)
        .map(|(s, e)| [s - start + shift, e - start + shift])
        .collect();
    (format!("{prefix}{body}{suffix}"), highlights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::AnalysisConfig;
    use crate::kb::SynonymGroup;

    fn analyzer() -> Analyzer {
        let config = AnalysisConfig {
            synonyms: vec![SynonymGroup(vec!["顺丰".into(), "SF".into(), "顺丰快递".into()])],
            // Without the built-in vocabulary, whose 中通快递 → 中通 would
            // hide the 快递 these tests look for.
            options: crate::analysis::QueryOptions { domain_vocab: false, ..Default::default() },
            ..AnalysisConfig::default()
        };
        Analyzer::new(&config).unwrap()
    }

    fn marked(analyzer: &Analyzer, answer: &str, query: &str) -> Vec<String> {
        let plainness = Plainness::new(1);
        let (text, ranges) = snippet(analyzer, &plainness, 0, answer, &analyzer.analyze(query));
        let chars: Vec<char> = text.chars().collect();
        ranges.iter().map(|[s, e]| chars[*s..*e].iter().collect()).collect()
    }

    #[test]
    fn plain_answers_are_highlighted_by_substring_with_synonyms() {
        let a = analyzer();
        let marks = marked(&a, "默认发中通，需要SF可以补运费差价。", "能发顺丰吗");
        assert!(marks.contains(&"SF".to_string()), "{marks:?}");
        let marks = marked(&a, "SFX 不是快递。", "sf");
        assert!(marks.is_empty(), "whole ASCII words only: {marks:?}");
    }

    #[test]
    fn folded_numbers_are_highlighted_in_hanzi() {
        assert_eq!(respell("7天"), vec!["七天".to_string()]);
        assert_eq!(respell("2件包邮"), vec!["二件包邮".to_string(), "两件包邮".to_string()]);
        assert!(respell("sf").is_empty());
    }

    #[test]
    fn answers_not_in_normal_form_keep_the_full_analysis() {
        let a = analyzer();
        // Traditional characters in the answer, simplified in the query.
        let marks = marked(&a, "下單後48小時內發貨。", "多久发货");
        assert_eq!(marks, vec!["發貨".to_string()]);
    }

    #[test]
    fn both_paths_agree_on_a_plain_answer() {
        let a = analyzer();
        let answer = "拍下后48小时内发货，默认发中通快递，偏远地区除外。";
        let query = a.analyze("什么时候发货，发什么快递");
        let text = answer.replace('\n', " ");
        let mut fast = substring_matches(&a, &text.to_ascii_lowercase(), &query);
        let mut full = analysed_matches(&a, &text, &query);
        let merge = |r: &mut Vec<(usize, usize)>| render(&text, std::mem::take(r)).1;
        assert_eq!(merge(&mut fast), merge(&mut full));
    }
}
