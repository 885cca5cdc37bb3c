//! Pinyin: buyers who type with a pinyin keyboard and do not pick the
//! characters (`fahuo`, `fa huo`, `fh`, `qtwly`), or pick the wrong
//! homophone (发或 for 发货, 退宽 for 退款).
//!
//! Both are decoded against a [`Lexicon`] of the index's own words (what
//! its phrasings were segmented into), never against a general dictionary:
//! the candidates are words the knowledge base can match, ranked by how
//! many phrasings use them, and highlights land on real hanzi because the
//! search then runs on those words. The character readings come from the
//! `pinyin` crate's static table (no loading cost).

use std::collections::HashMap;

use pinyin::{ToPinyin, ToPinyinMulti};

/// Most readings kept per word: polyphonic characters (还, 行, 长) multiply.
const MAX_READINGS: usize = 4;
/// Candidates kept per decoded piece.
const MAX_CANDIDATES: usize = 3;

/// One knowledge-base word and how many phrasings use it.
#[derive(Debug, Clone)]
struct LexWord {
    text: String,
    phrasings: u32,
}

/// Index words by their pinyin: full (`fahuo`), initials (`fh`) and fuzzy
/// (`fahuo` with zh/z, ch/c, sh/s, n/l, -ng/-n folded).
#[derive(Debug, Default)]
pub struct Lexicon {
    words: Vec<LexWord>,
    full: HashMap<String, Vec<u32>>,
    initials: HashMap<String, Vec<u32>>,
    fuzzy: HashMap<String, Vec<u32>>,
    longest_key: usize,
}

/// A Latin run decoded into knowledge-base words.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The words, best first, for each piece of the run (`qtwly` → one
    /// piece, `fahuotuikuan` → two).
    pub pieces: Vec<Vec<String>>,
    /// Whether a keyboard slip had to be corrected to decode it.
    pub corrected: bool,
}

fn digit_reading(c: char) -> Option<&'static str> {
    let readings = ["ling", "yi", "er", "san", "si", "wu", "liu", "qi", "ba", "jiu"];
    c.to_digit(10).map(|d| readings[d as usize])
}

/// Every reading of `word` (up to [`MAX_READINGS`]) as syllables, or `None`
/// when a character has no reading (Latin letters, symbols).
fn readings(word: &str) -> Option<Vec<Vec<&'static str>>> {
    let mut out: Vec<Vec<&'static str>> = vec![Vec::new()];
    for c in word.chars() {
        let options: Vec<&'static str> = if let Some(r) = digit_reading(c) {
            vec![r]
        } else {
            let multi = c.to_pinyin_multi()?;
            let mut v: Vec<&'static str> = multi.into_iter().map(|p| p.plain()).collect();
            v.dedup();
            v.truncate(2);
            v
        };
        let mut next = Vec::new();
        for prefix in &out {
            for r in &options {
                if next.len() < MAX_READINGS {
                    let mut p = prefix.clone();
                    p.push(*r);
                    next.push(p);
                }
            }
        }
        out = next;
    }
    Some(out)
}

/// Folds the sounds a southern accent, or a hurried pinyin keyboard, mixes up.
fn fuzzy_syllable(s: &str) -> String {
    let mut s = s.to_string();
    for (from, to) in [("zh", "z"), ("ch", "c"), ("sh", "s")] {
        if let Some(rest) = s.strip_prefix(from) {
            s = format!("{to}{rest}");
        }
    }
    if let Some(rest) = s.strip_prefix('l') {
        s = format!("n{rest}");
    }
    if s.ends_with("ng") {
        s.pop();
    }
    s
}

/// The first reading of each character of `text`, as a fuzzy key, if every
/// character has one.
pub fn fuzzy_key(text: &str) -> Option<String> {
    let mut key = String::new();
    for c in text.chars() {
        let r = match digit_reading(c) {
            Some(r) => r,
            None => c.to_pinyin()?.plain(),
        };
        key.push_str(&fuzzy_syllable(r));
    }
    Some(key)
}

fn push(map: &mut HashMap<String, Vec<u32>>, key: String, id: u32) {
    let ids = map.entry(key).or_default();
    if !ids.contains(&id) {
        ids.push(id);
    }
}

impl Lexicon {
    /// Builds the lexicon from the index's words and how many phrasings use
    /// each. Words of one character are left out: a single syllable is too
    /// ambiguous to decode.
    pub fn new<'a>(words: impl IntoIterator<Item = (&'a str, u32)>) -> Lexicon {
        let mut lex = Lexicon::default();
        for (text, phrasings) in words {
            let n = text.chars().count();
            if !(2..=8).contains(&n) || !text.chars().all(|c| c.is_numeric() || !c.is_ascii()) {
                continue;
            }
            let Some(all) = readings(text) else { continue };
            let id = lex.words.len() as u32;
            for syllables in &all {
                let full: String = syllables.concat();
                let initials: String = syllables.iter().filter_map(|s| s.chars().next()).collect();
                let fuzzy: String = syllables.iter().map(|s| fuzzy_syllable(s)).collect();
                lex.longest_key = lex.longest_key.max(full.len());
                push(&mut lex.full, full, id);
                if n >= 2 {
                    push(&mut lex.initials, initials, id);
                }
                push(&mut lex.fuzzy, fuzzy, id);
            }
            lex.words.push(LexWord { text: text.to_string(), phrasings });
        }
        for map in [&mut lex.full, &mut lex.initials, &mut lex.fuzzy] {
            for ids in map.values_mut() {
                ids.sort_by(|a, b| lex.words[*b as usize].phrasings.cmp(&lex.words[*a as usize].phrasings));
            }
        }
        lex
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    fn best(&self, ids: &[u32]) -> Vec<String> {
        ids.iter().take(MAX_CANDIDATES).map(|&i| self.words[i as usize].text.clone()).collect()
    }

    fn phrasings(&self, ids: &[u32]) -> u32 {
        ids.first().map_or(0, |&i| self.words[i as usize].phrasings)
    }

    /// Decodes a run of lower-case Latin letters typed as pinyin: full
    /// syllables, initials, or a mix of words of each, split where the
    /// knowledge base has words. A run that only decodes with one slipped,
    /// doubled or missing letter is decoded with it corrected. `None` when
    /// nothing fits.
    pub fn decode(&self, run: &str) -> Option<Decoded> {
        if run.len() < 2 || !run.bytes().all(|b| b.is_ascii_lowercase()) || self.words.is_empty() {
            return None;
        }
        if let Some(pieces) = self.segment(run) {
            return Some(Decoded { pieces, corrected: false });
        }
        if run.len() >= 4 {
            // One keyboard slip: the closest full reading, most used first.
            let mut best: Option<(&str, u32)> = None;
            for (key, ids) in &self.full {
                if key.len().abs_diff(run.len()) <= 1 && strsim::osa_distance(key, run) == 1 {
                    let weight = self.phrasings(ids);
                    if best.is_none_or(|(_, w)| weight > w) {
                        best = Some((key, weight));
                    }
                }
            }
            if let Some((key, _)) = best {
                return Some(Decoded { pieces: vec![self.best(&self.full[key])], corrected: true });
            }
        }
        None
    }

    /// Splits `run` into the fewest pieces that are each a word's full
    /// reading or initials (full readings preferred), by dynamic programming.
    fn segment(&self, run: &str) -> Option<Vec<Vec<String>>> {
        let n = run.len();
        // cost, previous cut, ids of the piece ending here
        let mut best: Vec<Option<(f32, usize, &Vec<u32>)>> = vec![None; n + 1];
        let mut start_cost = vec![f32::INFINITY; n + 1];
        start_cost[0] = 0.0;
        for i in 0..n {
            if !start_cost[i].is_finite() {
                continue;
            }
            for j in i + 2..=n.min(i + self.longest_key) {
                let piece = &run[i..j];
                for (map, cost) in [(&self.full, 1.0), (&self.initials, 1.6)] {
                    if let Some(ids) = map.get(piece) {
                        let c = start_cost[i] + cost;
                        if c < start_cost[j] {
                            start_cost[j] = c;
                            best[j] = Some((c, i, ids));
                        }
                    }
                }
            }
        }
        best[n]?;
        let mut pieces = Vec::new();
        let mut at = n;
        while at > 0 {
            let (_, from, ids) = best[at]?;
            pieces.push(self.best(ids));
            at = from;
        }
        pieces.reverse();
        Some(pieces)
    }

    /// A knowledge-base word that sounds like `text` (same length, same
    /// fuzzy reading, sharing at least one character in place), the most
    /// used one: 发或 → 发货, 退宽 → 退款. `None` for a word the lexicon has.
    pub fn homophone(&self, text: &str) -> Option<&str> {
        let key = fuzzy_key(text)?;
        let ids = self.fuzzy.get(&key)?;
        let n = text.chars().count();
        let need_shared = if n <= 3 { 1 } else { n - 2 };
        ids.iter().map(|&i| &self.words[i as usize]).find_map(|w| {
            let shared = w.text.chars().zip(text.chars()).filter(|(a, b)| a == b).count();
            (w.text != text && w.text.chars().count() == n && shared >= need_shared).then_some(w.text.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon() -> Lexicon {
        Lexicon::new([("发货", 9), ("7天无理由", 5), ("退款", 8), ("返还", 1), ("运费险", 4), ("花呗", 3)])
    }

    #[test]
    fn full_pinyin_and_initials_decode_to_words() {
        let lex = lexicon();
        assert_eq!(lex.decode("fahuo").unwrap().pieces, vec![vec!["发货".to_string()]]);
        assert_eq!(lex.decode("qtwly").unwrap().pieces, vec![vec!["7天无理由".to_string()]]);
        assert_eq!(lex.decode("fh").unwrap().pieces[0][0], "发货");
        let two = lex.decode("tuikuanyunfeixian").unwrap().pieces;
        assert_eq!(two, vec![vec!["退款".to_string()], vec!["运费险".to_string()]]);
        assert!(lex.decode("xyz").is_none());
    }

    #[test]
    fn one_keyboard_slip_is_forgiven() {
        let d = lexicon().decode("fahup").unwrap();
        assert!(d.corrected);
        assert_eq!(d.pieces[0][0], "发货");
    }

    #[test]
    fn homophones_map_to_knowledge_base_words() {
        let lex = lexicon();
        assert_eq!(lex.homophone("发或"), Some("发货"));
        assert_eq!(lex.homophone("退宽"), Some("退款"));
        assert_eq!(lex.homophone("发货"), None);
        assert_eq!(lex.homophone("花贝"), Some("花呗"));
    }
}
