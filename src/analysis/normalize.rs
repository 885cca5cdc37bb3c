//! Text normalisation: NFKC (full-width → half-width), lower case, and
//! traditional → simplified, keeping a map back to the original text so that
//! highlights land on what the user actually wrote.

use ferrous_opencc::config::BuiltinConfig;
use ferrous_opencc::OpenCC;
use unicode_normalization::UnicodeNormalization;

/// Converts traditional characters and phrases to simplified with OpenCC's tables.
pub struct Simplifier(OpenCC);

impl Simplifier {
    /// Loads OpenCC's built-in traditional → simplified tables.
    pub fn new() -> Result<Self, ferrous_opencc::error::OpenCCError> {
        Ok(Simplifier(OpenCC::from_config(BuiltinConfig::T2s)?))
    }

    fn convert(&self, text: &str) -> String {
        self.0.convert(text)
    }
}

/// Normalised text and, for each of its characters, the byte range of the
/// original character it came from.
#[derive(Debug, Clone)]
pub struct Normalized {
    pub text: String,
    /// Byte offset in `text` of each normalised character.
    starts: Vec<usize>,
    /// Original byte range for each normalised character.
    origins: Vec<(usize, usize)>,
}

impl Normalized {
    /// Maps a byte range of the normalised text back to the original text.
    pub fn original_range(&self, start: usize, end: usize) -> (usize, usize) {
        if self.origins.is_empty() || start >= end {
            return (0, 0);
        }
        let first = self.starts.partition_point(|&s| s < start).min(self.origins.len() - 1);
        let last = self.starts.partition_point(|&s| s < end).saturating_sub(1).max(first);
        (self.origins[first].0, self.origins[last].1)
    }
}

/// Units that a number counts in buyers' messages: a Chinese numeral right
/// before one of them is a quantity (七天, 两件, 一双, 九折, 三期); 个, 次, 号 and 月 are left alone, they
/// make too many ordinary words (一个人, 一次性, 一月份).
const MEASURES: &str = "天件双码瓶期折";

fn numeral_digit(c: char) -> Option<char> {
    let i = "零一二两三四五六七八九".chars().position(|n| n == c)?;
    Some(b"01223456789"[i] as char)
}

impl Normalized {
    /// Writes single Chinese numerals that count something as digits
    /// (七天 → 7天, 两件 → 2件), so 七天无理由 and 7天无理由 are one term and
    /// `7天` finds `七天`. Only a lone numeral before a measure word changes:
    /// 十五天, 一起, 统一 and 第一 stay as they are.
    pub fn fold_numerals(&mut self) {
        if !self.text.chars().any(|c| numeral_digit(c).is_some()) {
            return;
        }
        let chars: Vec<char> = self.text.chars().collect();
        let mut out = String::with_capacity(self.text.len());
        for (i, &c) in chars.iter().enumerate() {
            let before = i.checked_sub(1).map(|j| chars[j]);
            let lone = before.is_none_or(|b| numeral_digit(b).is_none() && !"十百千万第".contains(b));
            let counts = chars.get(i + 1).is_some_and(|n| MEASURES.contains(*n));
            match numeral_digit(c) {
                Some(d) if lone && counts => out.push(d),
                _ => out.push(c),
            }
        }
        self.starts = out.char_indices().map(|(i, _)| i).collect();
        self.text = out;
    }
}

/// Characters that NFKC and lower-casing leave unchanged, the common case.
fn is_stable(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}') || (c.is_ascii() && !c.is_ascii_uppercase())
}

/// Normalises `text`: NFKC, lower case, traditional → simplified.
pub fn normalize(simplifier: &Simplifier, text: &str) -> Normalized {
    let mut folded = String::with_capacity(text.len());
    let mut origins = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let span = (i, i + c.len_utf8());
        if is_stable(c) {
            folded.push(c);
            origins.push(span);
            continue;
        }
        for n in std::iter::once(c).nfkc() {
            for l in n.to_lowercase() {
                folded.push(l);
                origins.push(span);
            }
        }
    }
    let mut text_out = if folded.is_ascii() { folded.clone() } else { simplifier.convert(&folded) };
    if text_out.chars().count() != origins.len() {
        // A phrase conversion changed the length: fall back to character by
        // character, which keeps the map exact.
        text_out = folded.chars().map(|c| simplifier.convert(c.encode_utf8(&mut [0; 4]))).collect();
        if text_out.chars().count() != origins.len() {
            text_out = folded;
        }
    }
    let starts = text_out.char_indices().map(|(i, _)| i).collect();
    Normalized { text: text_out, starts, origins }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_width_case_and_script() {
        let s = Simplifier::new().unwrap();
        assert_eq!(normalize(&s, "ＳＦ發貨７天").text, "sf发货7天");
        assert_eq!(normalize(&s, "請問能開發票嗎").text, "请问能开发票吗");
    }

    #[test]
    fn numerals_that_count_become_digits() {
        let s = Simplifier::new().unwrap();
        let mut n = normalize(&s, "七天无理由，两件一起发，第一次，十五天");
        n.fold_numerals();
        assert_eq!(n.text, "7天无理由,2件一起发,第一次,十五天");
        let start = n.text.find("2件").unwrap();
        let (a, b) = n.original_range(start, start + "2件".len());
        assert_eq!(&"七天无理由，两件一起发，第一次，十五天"[a..b], "两件");
    }

    #[test]
    fn maps_ranges_back_to_the_original() {
        let s = Simplifier::new().unwrap();
        let original = "Ａ發貨";
        let n = normalize(&s, original);
        let start = n.text.find("发货").unwrap();
        let (a, b) = n.original_range(start, start + "发货".len());
        assert_eq!(&original[a..b], "發貨");
    }
}
