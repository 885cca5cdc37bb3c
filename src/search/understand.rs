//! Query understanding: how a buyer's message becomes weighted search terms
//! (clauses, pinyin, typo corrections), and the record of it that
//! `explain` shows.
//!
//! The cheap steps (clauses, decoding Latin runs that are not known words)
//! run on every query; the typo step runs only when the first search is
//! weak (see `search_with`), and its result is kept only if it matches the
//! knowledge base better.

use serde::{Deserialize, Serialize};

use crate::analysis::clauses::{self, Attribute, Clause, Role};
use crate::analysis::pinyin::{Decoded, Lexicon};
use crate::analysis::{Analysis, Analyzer, Token};

/// Weight of a background clause when the message also asks something.
/// Measured on the buyer-message set and atec-s500: 0.5 lost 9 points of
/// R@1 on long messages and 0.011 MRR on atec (the background clause often
/// names the product or the problem: 「满300减30的券领了，付款时没抵扣，怎么回事」),
/// 0.8 lost 3 points; so clauses count equally and the gain comes from
/// dropping chat clauses and lifting attributes out.
const BACKGROUND_WEIGHT: f32 = 1.0;
/// Weight of the second and third pinyin candidates of a piece.
const ALTERNATIVE_WEIGHT: f32 = 0.3;

/// How a query was understood (for `explain`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Understanding {
    /// The query after width, case, script and number folding.
    pub normalized: String,
    /// The clauses searched, with their role; empty when clauses are off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clauses: Vec<Clause>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    /// Latin runs read as pinyin and the words they became.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinyin: Vec<PinyinReading>,
    /// Typo corrections that were applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<Correction>,
    /// Words searched as their synonym group's canonical word.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub synonyms: Vec<Correction>,
    /// The words searched, with their weight.
    pub terms: Vec<(String, f32)>,
}

/// A Latin run and the knowledge-base words it was read as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinyinReading {
    pub latin: String,
    pub words: Vec<String>,
    /// A keyboard slip was corrected to read it.
    pub slip: bool,
}

/// One replacement: `from` searched as `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub from: String,
    pub to: String,
}

/// An analysed piece of the query and the weight of its terms.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub analysis: Analysis,
    pub weight: f32,
}

/// What understanding needs from the index.
pub(crate) struct Context<'a> {
    pub analyzer: &'a Analyzer,
    pub lexicon: Option<&'a Lexicon>,
    /// Whether the index has `word` (normalised) in any phrasing.
    pub knows: &'a dyn Fn(&str) -> bool,
}

/// Understands `query` into weighted parts.
pub(crate) fn understand(cx: &Context<'_>, query: &str) -> (Understanding, Vec<Part>) {
    let options = *cx.analyzer.options();
    let normalized = cx.analyzer.normalize(query).text;
    let mut u = Understanding { normalized: normalized.clone(), ..Understanding::default() };
    let clauses: Vec<Clause> = if options.clauses {
        let split = clauses::split(&normalized);
        u.attributes = split.attributes;
        split.clauses
    } else {
        vec![Clause { text: normalized.clone(), role: Role::Question }]
    };
    let asks = clauses.iter().any(|c| c.role == Role::Question && clauses::has_content(&c.text));
    let mut parts = Vec::new();
    let mut searched = Vec::new();
    for clause in clauses {
        let weight = match clause.role {
            Role::Chat => continue,
            Role::Background if asks => BACKGROUND_WEIGHT,
            _ => 1.0,
        };
        let mut text = clause.text.clone();
        if options.pinyin {
            if let Some(lexicon) = cx.lexicon {
                let (decoded, alternatives) = read_pinyin(cx, lexicon, &text, &mut u.pinyin);
                text = decoded;
                if !alternatives.is_empty() {
                    parts.push(Part {
                        analysis: cx.analyzer.analyze(&alternatives),
                        weight: weight * ALTERNATIVE_WEIGHT,
                    });
                }
            }
        }
        parts.push(Part { analysis: cx.analyzer.analyze(&text), weight });
        searched.push(Clause { text, role: clause.role });
    }
    if options.clauses {
        u.clauses = searched;
    }
    describe(cx.analyzer, &mut u, &parts);
    (u, parts)
}

/// Replaces each Latin run that is not a known word by the words its
/// pinyin reads as; returns the new text and the alternatives.
fn read_pinyin(cx: &Context<'_>, lexicon: &Lexicon, text: &str, log: &mut Vec<PinyinReading>) -> (String, String) {
    if !text.bytes().any(|b| b.is_ascii_alphabetic()) {
        return (text.to_string(), String::new());
    }
    let mut out = String::with_capacity(text.len());
    let mut alternatives = String::new();
    let mut run = String::new();
    let mut flush = |run: &mut String, out: &mut String, alternatives: &mut String| {
        if run.trim().is_empty() {
            out.push_str(run);
            run.clear();
            return;
        }
        // Known words (sf, vc, ems) stay; the rest of the run is read as pinyin.
        let mut pending: Vec<String> = Vec::new();
        let mut emit = |pending: &mut Vec<String>, out: &mut String, alternatives: &mut String| {
            if pending.is_empty() {
                return;
            }
            // The whole run as one reading (`fa huo`), else word by word
            // (`tuikuan duojiu daozhang`), dropping what does not read (`ma`).
            let joined = pending.concat();
            let readings: Vec<(String, Option<Decoded>)> = match lexicon.decode(&joined) {
                Some(d) => vec![(joined, Some(d))],
                None => pending.iter().map(|w| (w.clone(), lexicon.decode(w))).collect(),
            };
            for (latin, decoded) in readings {
                match decoded {
                    Some(d) => {
                        out.push(' ');
                        for piece in &d.pieces {
                            out.push_str(&piece[0]);
                            out.push(' ');
                            for alt in &piece[1..] {
                                alternatives.push_str(alt);
                                alternatives.push(' ');
                            }
                        }
                        log.push(PinyinReading {
                            latin,
                            words: d.pieces.iter().map(|p| p[0].clone()).collect(),
                            slip: d.corrected,
                        });
                    }
                    None => {
                        out.push(' ');
                        out.push_str(&latin);
                        out.push(' ');
                    }
                }
            }
            pending.clear();
        };
        for word in run.split_whitespace() {
            let known =
                (cx.knows)(word) || cx.analyzer.canonical(word).is_some() || word.len() < 2 && pending.is_empty();
            if known {
                emit(&mut pending, out, alternatives);
                out.push(' ');
                out.push_str(word);
                out.push(' ');
            } else {
                pending.push(word.to_string());
            }
        }
        emit(&mut pending, out, alternatives);
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_lowercase() || (c == ' ' && !run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out, &mut alternatives);
            out.push(c);
        }
    }
    flush(&mut run, &mut out, &mut alternatives);
    (out, alternatives)
}

/// Homophone corrections of the query's clauses, if any: windows of two to
/// four characters that the knowledge base does not have but that sound
/// like a word it has. Longer windows win; corrections never overlap.
pub(crate) fn correct(cx: &Context<'_>, u: &Understanding) -> Option<(Vec<Correction>, Vec<String>)> {
    let lexicon = cx.lexicon?;
    let texts: Vec<String> = if u.clauses.is_empty() {
        vec![u.normalized.clone()]
    } else {
        u.clauses.iter().filter(|c| c.role != Role::Chat).map(|c| c.text.clone()).collect()
    };
    let mut corrections = Vec::new();
    let mut fixed = Vec::new();
    for text in texts {
        let chars: Vec<char> = text.chars().collect();
        let mut taken = vec![false; chars.len()];
        let mut out = chars.clone();
        for len in [4, 3, 2] {
            if chars.len() < len {
                continue;
            }
            for i in 0..=chars.len() - len {
                if taken[i..i + len].iter().any(|t| *t) || !chars[i..i + len].iter().all(|c| is_hanzi(*c)) {
                    continue;
                }
                let window: String = chars[i..i + len].iter().collect();
                // A word the index or the dictionary knows is not a typo.
                if (cx.knows)(&window) || cx.analyzer.has_word(&window) {
                    continue;
                }
                if let Some(to) = lexicon.homophone(&window) {
                    for (k, c) in to.chars().enumerate() {
                        out[i + k] = c;
                        taken[i + k] = true;
                    }
                    corrections.push(Correction { from: window, to: to.to_string() });
                }
            }
        }
        fixed.push(out.into_iter().collect());
    }
    (!corrections.is_empty()).then_some((corrections, fixed))
}

fn is_hanzi(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}')
}

/// The parts of a corrected query: the corrected clause texts, weighted as
/// the originals were.
pub(crate) fn corrected_parts(cx: &Context<'_>, u: &Understanding, fixed: &[String]) -> Vec<Part> {
    let asks = u.clauses.iter().any(|c| c.role == Role::Question && clauses::has_content(&c.text));
    let roles: Vec<Role> = if u.clauses.is_empty() {
        vec![Role::Question]
    } else {
        u.clauses.iter().filter(|c| c.role != Role::Chat).map(|c| c.role).collect()
    };
    fixed
        .iter()
        .zip(roles)
        .map(|(text, role)| Part {
            analysis: cx.analyzer.analyze(text),
            weight: if role == Role::Background && asks { BACKGROUND_WEIGHT } else { 1.0 },
        })
        .collect()
}

/// Fills in the synonyms and terms of `u` from the parts searched.
pub(crate) fn describe(analyzer: &Analyzer, u: &mut Understanding, parts: &[Part]) {
    u.terms.clear();
    u.synonyms.clear();
    for part in parts {
        for t in &part.analysis.words {
            match u.terms.iter_mut().find(|(w, _)| *w == t.term) {
                Some((_, w)) => *w += part.weight,
                None => u.terms.push((t.term.clone(), part.weight)),
            }
        }
    }
    let normalized = analyzer.normalize(&u.normalized).text;
    for word in normalized.split(|c: char| !c.is_alphanumeric()) {
        if let Some(to) = analyzer.canonical(word) {
            u.synonyms.push(Correction { from: word.to_string(), to: to.to_string() });
        }
    }
    for (term, _) in &u.terms {
        for variant in analyzer.variants(term) {
            if u.normalized.contains(variant.as_str()) && !u.synonyms.iter().any(|s| s.from == *variant) {
                u.synonyms.push(Correction { from: variant.clone(), to: term.clone() });
            }
        }
    }
}

/// All parts' tokens as one analysis (for confidence and snippets).
pub(crate) fn merged(parts: &[Part]) -> Analysis {
    let mut out = Analysis::default();
    for part in parts.iter().filter(|p| p.weight >= BACKGROUND_WEIGHT) {
        let extend = |into: &mut Vec<Token>, from: &[Token]| into.extend(from.iter().cloned());
        extend(&mut out.words, &part.analysis.words);
        extend(&mut out.bigrams, &part.analysis.bigrams);
        extend(&mut out.chars, &part.analysis.chars);
    }
    out
}
