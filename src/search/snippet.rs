//! Snippets: a short plain-text excerpt of the answer around the words the
//! query matched, with the matched ranges marked.

use std::collections::HashSet;

use crate::analysis::{Analysis, Analyzer};

/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 120;
/// Characters of context kept before the first match.
const LEAD_CHARS: usize = 20;

/// Returns the snippet and the `[start, end)` character ranges in it that
/// match the query's words or bigrams.
pub fn snippet(analyzer: &Analyzer, answer: &str, query: &Analysis) -> (String, Vec<[usize; 2]>) {
    let flat = answer.replace('\n', " ");
    let wanted: HashSet<&str> = query.words.iter().chain(query.bigrams.iter()).map(|t| t.term.as_str()).collect();
    let analysis = analyzer.analyze(&flat);
    let mut ranges: Vec<(usize, usize)> = analysis
        .words
        .iter()
        .chain(analysis.bigrams.iter())
        .filter(|t| wanted.contains(t.term.as_str()))
        .map(|t| (t.start, t.end))
        .collect();
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
