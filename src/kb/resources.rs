//! `dict.txt` and `synonyms.txt`: the shop's own vocabulary for the analysis.

use std::collections::HashMap;

/// One line of `dict.txt`: a word jieba should keep whole (brands, 固特异, 运费险).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DictWord {
    pub word: String,
    /// Higher frequency makes jieba prefer the word over splitting it.
    pub freq: Option<usize>,
    /// Part-of-speech tag, kept for jieba's format; kefu does not use it.
    pub tag: Option<String>,
}

/// One line of `synonyms.txt`: words that mean the same thing to a buyer.
/// The first word is canonical: every other word is indexed and searched as it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SynonymGroup(pub Vec<String>);

fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// Largest accepted word frequency. jieba sums frequencies; the largest
/// word in its own dictionary is under 10⁶, so this is ample and safe.
const MAX_FREQ: usize = 100_000_000;

/// Parses jieba's user-dictionary format, `word [freq] [tag]` per line.
pub fn parse_dict(text: &str, report: &mut dyn FnMut(usize, String)) -> Vec<DictWord> {
    let mut words = Vec::new();
    for (line, content) in content_lines(text) {
        let parts: Vec<&str> = content.split_whitespace().collect();
        if parts.len() > 3 {
            report(line, format!("expected `word [freq] [tag]`, found {} fields", parts.len()));
            continue;
        }
        let freq = match parts.get(1) {
            None => None,
            Some(f) => {
                match f.parse::<usize>() {
                    Ok(freq) if (1..=MAX_FREQ).contains(&freq) => Some(freq),
                    _ => {
                        report(
                            line,
                            format!("frequency `{f}` must be a whole number from 1 to {MAX_FREQ} (format: `word [freq] [tag]`)"),
                        );
                        continue;
                    }
                }
            }
        };
        words.push(DictWord { word: parts[0].to_string(), freq, tag: parts.get(2).map(|t| t.to_string()) });
    }
    words
}

/// Parses synonym groups: one group per line, words separated by `,`, `，` or `、`.
pub fn parse_synonyms(text: &str, report: &mut dyn FnMut(usize, String)) -> Vec<SynonymGroup> {
    let mut groups = Vec::new();
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for (line, content) in content_lines(text) {
        let mut group: Vec<String> = Vec::new();
        for word in content.split([',', '，', '、']).map(str::trim).filter(|w| !w.is_empty()) {
            let key = word.to_lowercase();
            if let Some(&other) = first_seen.get(&key) {
                if other != line {
                    report(line, format!("`{word}` is already in the synonym group on line {other}"));
                }
                continue;
            }
            first_seen.insert(key, line);
            group.push(word.to_string());
        }
        if group.len() < 2 {
            report(line, "a synonym group needs at least two words separated by commas".into());
            continue;
        }
        groups.push(SynonymGroup(group));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect<T>(f: impl FnOnce(&mut dyn FnMut(usize, String)) -> T) -> (T, Vec<(usize, String)>) {
        let mut errors = Vec::new();
        let out = f(&mut |line, msg| errors.push((line, msg)));
        (out, errors)
    }

    #[test]
    fn dict_lines_take_optional_freq_and_tag() {
        let (words, errors) = collect(|r| parse_dict("# brands\n固特异 2000 n\n运费险\n", r));
        assert!(errors.is_empty());
        assert_eq!(words[0], DictWord { word: "固特异".into(), freq: Some(2000), tag: Some("n".into()) });
        assert_eq!(words[1].freq, None);
    }

    #[test]
    fn dict_bad_frequency_names_the_line() {
        let (_, errors) = collect(|r| parse_dict("固特异 2000\n运费险 lots\n插旗 18446744073709551615\n催付 0\n", r));
        let lines: Vec<usize> = errors.iter().map(|e| e.0).collect();
        assert_eq!(lines, vec![2, 3, 4]);
    }

    #[test]
    fn synonyms_reject_a_word_in_two_groups() {
        let (groups, errors) = collect(|r| parse_synonyms("顺丰, SF，顺丰快递\n快递、物流\n圆通, sf\n", r));
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, vec!["顺丰", "SF", "顺丰快递"]);
        assert!(errors.iter().any(|(line, msg)| *line == 3 && msg.contains("line 1")), "{errors:?}");
    }
}
