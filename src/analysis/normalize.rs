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
    fn maps_ranges_back_to_the_original() {
        let s = Simplifier::new().unwrap();
        let original = "Ａ發貨";
        let n = normalize(&s, original);
        let start = n.text.find("发货").unwrap();
        let (a, b) = n.original_range(start, start + "发货".len());
        assert_eq!(&original[a..b], "發貨");
    }
}
